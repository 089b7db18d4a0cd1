//! What the manager's component reaches through `paasm:platform/controller` and `agents`:
//! the [`NodeControl`] of one manager, holding it weakly so the component never keeps a
//! stopped manager alive.

use std::net::SocketAddr;
use std::sync::{Arc, Weak};

use super::methods::MAX_COUNT;
use super::{Manager, Node};
use anyhow::Result;
use serde_json::{Map, Value};

use crate::platform::controller::BoxFuture;
use crate::platform::{NodeControl, NodeInfo};
use crate::rpc::Verb;
use crate::rpc::client::{self, ClientError};
use crate::service::state::ServiceState;

/// The component's view of the manager.
pub(super) struct Nodes(pub(super) Weak<Manager>);

impl Nodes {
    fn manager(&self) -> Result<Arc<Manager>, String> {
        self.0
            .upgrade()
            .ok_or_else(|| "the manager is stopping".to_string())
    }
}

impl NodeControl for Nodes {
    fn create_nodes(
        &self,
        count: u32,
        role: String,
        cloud: Option<String>,
        context: Vec<(String, String)>,
    ) -> BoxFuture<'_, Result<Vec<NodeInfo>, String>> {
        Box::pin(async move {
            let m = self.manager()?;
            let state = m.state();
            if !matches!(
                state,
                ServiceState::Prologue | ServiceState::Running | ServiceState::Adapting
            ) {
                return Err(format!("cannot create nodes in state {state}"));
            }
            if count == 0 || i64::from(count) > MAX_COUNT {
                return Err(format!(
                    "count must be from 1 to {MAX_COUNT}, found {count}"
                ));
            }
            if !m.package.roles.contains(&role) {
                return Err(format!(
                    "unknown role {role:?}: expected one of {}",
                    m.package.roles.join(", ")
                ));
            }
            let cloud = m.cloud_name(cloud.as_deref())?;
            let nodes = m
                .create_nodes(count as usize, &role, &cloud, &context)
                .await?;
            Ok(nodes.iter().map(Node::info).collect())
        })
    }

    fn delete_nodes(&self, ids: Vec<String>) -> BoxFuture<'_, Result<(), String>> {
        Box::pin(async move {
            let m = self.manager()?;
            let nodes: Vec<Node> = {
                let inner = m.lock();
                let mut nodes = Vec::new();
                for id in &ids {
                    match inner.nodes.iter().find(|n| &n.node.id == id) {
                        Some(n) => nodes.push(n.clone()),
                        None => return Err(format!("no node {id} in this service")),
                    }
                }
                nodes
            };
            m.delete_nodes(&nodes).await
        })
    }

    fn list_nodes(&self) -> Vec<NodeInfo> {
        match self.0.upgrade() {
            Some(m) => m.lock().nodes.iter().map(Node::info).collect(),
            None => Vec::new(),
        }
    }

    fn list_clouds(&self) -> Vec<String> {
        self.0
            .upgrade()
            .map(|m| m.cloud_names())
            .unwrap_or_default()
    }

    fn service_state(&self) -> String {
        self.0
            .upgrade()
            .map(|m| m.state().as_str().to_string())
            .unwrap_or_else(|| ServiceState::Stopped.as_str().to_string())
    }

    fn call_agent(
        &self,
        node: String,
        verb: Verb,
        method: String,
        params: Map<String, Value>,
    ) -> BoxFuture<'_, Result<Value, String>> {
        Box::pin(async move {
            let m = self.manager()?;
            let ip = m
                .lock()
                .nodes
                .iter()
                .find(|n| n.node.id == node)
                .map(|n| n.node.ip.clone())
                .ok_or_else(|| format!("no node {node} in this service"))?;
            let addr: SocketAddr = format!("{ip}:{}", m.settings.controller.agent_port)
                .parse()
                .map_err(|e| format!("node {node} has an unusable address {ip}: {e}"))?;
            match client::call(addr, verb, &method, &params, m.settings.agent_timeout).await {
                Ok(value) => Ok(value),
                Err(ClientError::Remote(message)) => Err(message),
                Err(e) => Err(format!("node {node} did not answer {method}: {e}")),
            }
        })
    }
}
