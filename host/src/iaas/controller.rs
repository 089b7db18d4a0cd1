//! The controller: creates and deletes a service's nodes on its clouds (the seed's
//! `Controller`, reference 3.1 and 3.2), with the original's loop made finite.
//!
//! `create_nodes` asks the cloud for instances booting from a contextualization script, polls
//! each node's `check_agent_process` until it answers or the node's boot timeout passes, kills
//! the nodes that failed and asks for replacements, for at most `max_attempts` rounds. When the
//! nodes cannot all be started, the ones that did start are killed too (nothing is left
//! half-created) and the error says what happened to each failed node.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::{Duration, Instant};

use super::cloud::{Cloud, CloudError, Instance};
use crate::rpc::{Verb, client};

/// Settings of the controller.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ControllerOptions {
    /// The port agents listen on.
    pub agent_port: u16,
    /// How long a node may take from creation to a first answer of `check_agent_process`.
    pub boot_timeout: Duration,
    /// Time between two probes of a booting node.
    pub poll_interval: Duration,
    /// Rounds of instance requests before `create_nodes` gives up.
    pub max_attempts: u32,
}

impl Default for ControllerOptions {
    fn default() -> Self {
        Self {
            agent_port: 5555,
            boot_timeout: Duration::from_secs(180),
            poll_interval: Duration::from_millis(500),
            max_attempts: 3,
        }
    }
}

/// A node of a service: an instance on a named cloud.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceNode {
    /// `<cloud><vmid>`, as in the original (`local4`).
    pub id: String,
    pub vmid: String,
    pub ip: String,
    pub private_ip: String,
    pub cloud: String,
}

/// Why nodes could not be created.
#[derive(Debug, thiserror::Error)]
pub enum ControllerError {
    #[error("unknown cloud: {name}; available clouds: {available}")]
    UnknownCloud { name: String, available: String },
    #[error(transparent)]
    Cloud(#[from] CloudError),
    #[error("{failed} of {count} nodes did not start after {attempts} attempts: {reasons}")]
    NotStarted {
        failed: usize,
        count: usize,
        attempts: u32,
        reasons: String,
    },
}

/// Creates and deletes nodes on the clouds it knows.
pub struct Controller {
    clouds: BTreeMap<String, Arc<dyn Cloud>>,
    options: ControllerOptions,
}

impl Controller {
    pub fn new(options: ControllerOptions) -> Self {
        Self {
            clouds: BTreeMap::new(),
            options,
        }
    }

    /// Adds a cloud under its own name.
    pub fn add_cloud(&mut self, cloud: Arc<dyn Cloud>) {
        self.clouds.insert(cloud.name().to_string(), cloud);
    }

    /// The names of the clouds, sorted.
    pub fn clouds(&self) -> Vec<String> {
        self.clouds.keys().cloned().collect()
    }

    /// The address nodes of `cloud` reach this machine at, when it is not the manager's own.
    pub fn gateway(&self, cloud: &str) -> Option<String> {
        self.clouds.get(cloud).and_then(|c| c.gateway())
    }

    /// The driver of cloud `name`.
    pub fn cloud_arc(&self, name: &str) -> Option<Arc<dyn Cloud>> {
        self.clouds.get(name).cloned()
    }

    fn cloud(&self, name: &str) -> Result<Arc<dyn Cloud>, ControllerError> {
        self.clouds
            .get(name)
            .cloned()
            .ok_or_else(|| ControllerError::UnknownCloud {
                name: name.to_string(),
                available: self.clouds().join(", "),
            })
    }

    /// Starts `count` nodes on `cloud` booting from `script`, each answering
    /// `check_agent_process`, or none at all.
    pub async fn create_nodes(
        &self,
        count: usize,
        cloud_name: &str,
        script: &str,
    ) -> Result<Vec<ServiceNode>, ControllerError> {
        self.create_nodes_as(count, cloud_name, script, "").await
    }

    /// [`Controller::create_nodes`] for nodes of `role` (clouds that label machines name it).
    pub async fn create_nodes_as(
        &self,
        count: usize,
        cloud_name: &str,
        script: &str,
        role: &str,
    ) -> Result<Vec<ServiceNode>, ControllerError> {
        let cloud = self.cloud(cloud_name)?;
        let mut ready: Vec<ServiceNode> = Vec::new();
        let mut failures: Vec<String> = Vec::new();
        let mut attempts = 0;
        while ready.len() < count && attempts < self.options.max_attempts {
            attempts += 1;
            let wanted = count - ready.len();
            let instances = {
                let (cloud, script, role) = (cloud.clone(), script.to_string(), role.to_string());
                tokio::task::spawn_blocking(move || cloud.new_instances_as(wanted, &script, &role))
                    .await
                    .map_err(|e| CloudError {
                        cloud: cloud_name.to_string(),
                        message: format!("driver panicked: {e}"),
                    })?
            };
            let instances = match instances {
                Ok(instances) => instances,
                Err(e) => {
                    self.kill_all(&cloud, &ready).await;
                    return Err(e.into());
                }
            };
            let probes = instances.iter().map(|i| self.wait_for_agent(i));
            let outcomes = futures_util::future::join_all(probes).await;
            for (instance, outcome) in instances.into_iter().zip(outcomes) {
                let node = ServiceNode {
                    id: format!("{cloud_name}{}", instance.vmid),
                    vmid: instance.vmid,
                    ip: instance.ip,
                    private_ip: instance.private_ip,
                    cloud: cloud_name.to_string(),
                };
                match outcome {
                    Ok(()) => ready.push(node),
                    Err(reason) => {
                        tracing::warn!(node = %node.id, ip = %node.ip, "node failed to start: {reason}");
                        failures.push(format!("node {} ({}) {reason}", node.id, node.ip));
                        self.kill_all(&cloud, std::slice::from_ref(&node)).await;
                    }
                }
            }
        }
        if ready.len() < count {
            let failed = count - ready.len();
            self.kill_all(&cloud, &ready).await;
            return Err(ControllerError::NotStarted {
                failed,
                count,
                attempts,
                reasons: failures.join("; "),
            });
        }
        Ok(ready)
    }

    /// Kills nodes, all at once; every failure is logged and returned, none stops the others.
    pub async fn delete_nodes(&self, nodes: &[ServiceNode]) -> Vec<String> {
        let kills = nodes.iter().map(|node| async move {
            match self.cloud(&node.cloud) {
                Ok(cloud) => {
                    let vmid = node.vmid.clone();
                    tokio::task::spawn_blocking(move || cloud.kill_instance(&vmid))
                        .await
                        .map_err(|e| e.to_string())
                        .and_then(|r| r.map_err(|e| e.to_string()))
                }
                Err(e) => Err(e.to_string()),
            }
        });
        let outcomes = futures_util::future::join_all(kills).await;
        let mut errors = Vec::new();
        for (node, outcome) in nodes.iter().zip(outcomes) {
            if let Err(e) = outcome {
                tracing::warn!(node = %node.id, "cannot delete node: {e}");
                errors.push(format!("node {}: {e}", node.id));
            }
        }
        errors
    }

    async fn kill_all(&self, cloud: &Arc<dyn Cloud>, nodes: &[ServiceNode]) {
        for node in nodes {
            let (cloud, vmid) = (cloud.clone(), node.vmid.clone());
            let killed = tokio::task::spawn_blocking(move || cloud.kill_instance(&vmid)).await;
            if let Ok(Err(e)) = killed {
                tracing::warn!(node = %node.id, "cannot kill node: {e}");
            }
        }
    }

    /// Polls the instance's agent until it answers `check_agent_process` or the boot timeout
    /// passes; the error says which.
    async fn wait_for_agent(&self, instance: &Instance) -> Result<(), String> {
        let addr: SocketAddr = format!("{}:{}", instance.ip, self.options.agent_port)
            .parse()
            .map_err(|e| format!("has an unusable address: {e}"))?;
        let started = Instant::now();
        let mut last = String::from("never answered");
        while started.elapsed() < self.options.boot_timeout {
            match check_agent_process(addr).await {
                Ok(()) => return Ok(()),
                Err(e) => last = e,
            }
            tokio::time::sleep(self.options.poll_interval).await;
        }
        Err(format!(
            "did not answer check_agent_process within {:?} (last: {last})",
            self.options.boot_timeout
        ))
    }
}

/// One liveness probe, exactly as the original manager's client sends it.
pub async fn check_agent_process(addr: SocketAddr) -> Result<(), String> {
    client::call(
        addr,
        Verb::Get,
        "check_agent_process",
        &serde_json::Map::new(),
        Duration::from_secs(5),
    )
    .await
    .map(|_| ())
    .map_err(|e| e.to_string())
}
