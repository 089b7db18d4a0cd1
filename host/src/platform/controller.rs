//! `paasm:platform/controller`: a manager's nodes on its clouds.
//!
//! The host side only translates: [`NodeControl`] is implemented by the manager role, which
//! owns the node list, its persistence and the IaaS controller. Time spent waiting here (nodes
//! booting) is not counted against the guest's call deadline.

use std::future::Future;
use std::pin::Pin;
use std::time::Instant;

use crate::engine::platform_bindings::controller::Host;
use crate::engine::platform_bindings::types::Node;
use crate::rpc::Verb;

use super::PlatformCtx;

/// A boxed future, so [`NodeControl`] stays usable as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// One node of a service, as the platform interfaces describe it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NodeInfo {
    pub id: String,
    pub ip: String,
    pub role: String,
    pub cloud: String,
}

/// What a manager offers its component: its nodes, its clouds and its agents.
pub trait NodeControl: Send + Sync {
    /// Creates `count` nodes with `role` on `cloud` (`None`: the default cloud), adding
    /// `context` to the `$NAME` replacements of their configuration; all or none.
    fn create_nodes(
        &self,
        count: u32,
        role: String,
        cloud: Option<String>,
        context: Vec<(String, String)>,
    ) -> BoxFuture<'_, Result<Vec<NodeInfo>, String>>;

    /// Deletes the nodes with these ids.
    fn delete_nodes(&self, ids: Vec<String>) -> BoxFuture<'_, Result<(), String>>;

    /// The service's nodes, oldest first.
    fn list_nodes(&self) -> Vec<NodeInfo>;

    /// The clouds nodes may be created on, the default first.
    fn list_clouds(&self) -> Vec<String>;

    /// The service's lifecycle state (`RUNNING`, ...).
    fn service_state(&self) -> String;

    /// Calls `method` on the agent of node `node` with `params` (a JSON object); the agent's
    /// result, or its error.
    fn call_agent(
        &self,
        node: String,
        verb: Verb,
        method: String,
        params: serde_json::Map<String, serde_json::Value>,
    ) -> BoxFuture<'_, Result<serde_json::Value, String>>;
}

impl From<NodeInfo> for Node {
    fn from(n: NodeInfo) -> Self {
        Node {
            id: n.id,
            ip: n.ip,
            role: n.role,
            cloud: n.cloud,
        }
    }
}

impl crate::engine::platform_bindings::types::Host for PlatformCtx {}

impl Host for PlatformCtx {
    async fn create_nodes(
        &mut self,
        count: u32,
        role: String,
        cloud: Option<String>,
        context: Vec<(String, String)>,
    ) -> wasmtime::Result<Result<Vec<Node>, String>> {
        let nodes = self.nodes("controller")?;
        let started = Instant::now();
        let created = nodes.create_nodes(count, role, cloud, context).await;
        self.waited += started.elapsed();
        Ok(created.map(|nodes| nodes.into_iter().map(Node::from).collect()))
    }

    async fn delete_nodes(&mut self, ids: Vec<String>) -> wasmtime::Result<Result<(), String>> {
        let nodes = self.nodes("controller")?;
        let started = Instant::now();
        let deleted = nodes.delete_nodes(ids).await;
        self.waited += started.elapsed();
        Ok(deleted)
    }

    async fn list_nodes(&mut self) -> wasmtime::Result<Vec<Node>> {
        let nodes = self.nodes("controller")?;
        Ok(nodes.list_nodes().into_iter().map(Node::from).collect())
    }

    async fn list_clouds(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self.nodes("controller")?.list_clouds())
    }

    async fn service_state(&mut self) -> wasmtime::Result<String> {
        Ok(self.nodes("controller")?.service_state())
    }
}

/// The platform's `verb` as the wire protocol's.
pub(super) fn verb(v: crate::engine::platform_bindings::agents::Verb) -> Verb {
    use crate::engine::platform_bindings::agents::Verb as Wit;
    match v {
        Wit::Get => Verb::Get,
        Wit::Post => Verb::Post,
    }
}
