//! Node health: the manager probes every agent with `check_agent_process` on a timer
//! (`NODE_HEALTH_INTERVAL_MS`, 10 s by default) and marks the nodes that do not answer as
//! unreachable, with the reason, in `list_nodes` and `get_node_info`; a node that answers
//! again is marked reachable again. Every change is logged.
//!
//! At start, the manager also reconciles its records with what each cloud lists
//! ([`reconcile`]): an instance the cloud runs for this manager but that no record names (the
//! manager was killed while creating it) is killed, never leaked; a recorded node the cloud
//! no longer has is forgotten.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use super::{Manager, Node};
use crate::iaas::controller::{Controller, check_agent_process};

/// Probes on a timer for as long as the manager lives.
pub(super) fn spawn(manager: &Arc<Manager>) {
    let every = manager.settings.health_interval;
    let weak: Weak<Manager> = Arc::downgrade(manager);
    tokio::spawn(async move {
        let mut ticker = tokio::time::interval(every);
        ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        ticker.tick().await;
        loop {
            ticker.tick().await;
            let Some(manager) = weak.upgrade() else {
                return;
            };
            check(&manager).await;
        }
    });
}

/// Probes every node once and records who answered.
pub(super) async fn check(manager: &Arc<Manager>) {
    let nodes: Vec<Node> = manager.lock().nodes.clone();
    let port = manager.settings.controller.agent_port;
    let probes = nodes.iter().map(|n| async move {
        let addr: Result<SocketAddr, _> = format!("{}:{port}", n.node.ip).parse();
        match addr {
            Ok(addr) => check_agent_process(addr).await,
            Err(e) => Err(format!("unusable address: {e}")),
        }
    });
    let outcomes = futures_util::future::join_all(probes).await;
    let mut inner = manager.lock();
    for (node, outcome) in nodes.iter().zip(outcomes) {
        // A node removed meanwhile is not marked.
        if !inner.nodes.iter().any(|n| n.node.id == node.node.id) {
            continue;
        }
        let id = &node.node.id;
        match outcome {
            Ok(()) => {
                if inner.unreachable.remove(id).is_some() {
                    tracing::info!(node = %id, ip = %node.node.ip, "node answers again");
                }
            }
            Err(reason) => {
                if !inner.unreachable.contains_key(id) {
                    tracing::warn!(node = %id, ip = %node.node.ip, "node is unreachable: {reason}");
                }
                inner.unreachable.insert(id.clone(), reason);
            }
        }
    }
}

/// Reconciles the recorded nodes with the clouds' lists: kills instances nobody recorded,
/// forgets recorded nodes a cloud no longer has. Clouds that cannot list are left alone (and
/// logged). Returns the nodes to keep.
pub(super) fn reconcile(controller: &Controller, nodes: Vec<Node>) -> Vec<Node> {
    let mut keep = Vec::new();
    let mut by_cloud: BTreeMap<String, Vec<Node>> = BTreeMap::new();
    for node in nodes {
        by_cloud
            .entry(node.node.cloud.clone())
            .or_default()
            .push(node);
    }
    for name in controller.clouds() {
        let recorded = by_cloud.remove(&name).unwrap_or_default();
        let Some(cloud) = controller.cloud_arc(&name) else {
            continue;
        };
        let listed = match cloud.list_vms() {
            Ok(listed) => listed,
            Err(e) => {
                tracing::warn!(cloud = %name, "cannot list the cloud's instances: {e}");
                keep.extend(recorded);
                continue;
            }
        };
        for instance in &listed {
            if !recorded.iter().any(|n| n.node.vmid == instance.vmid) {
                tracing::warn!(
                    cloud = %name, vmid = %instance.vmid, ip = %instance.ip,
                    "killing an instance this manager started but never recorded (it stopped while creating nodes)"
                );
                if let Err(e) = cloud.kill_instance(&instance.vmid) {
                    tracing::error!(cloud = %name, vmid = %instance.vmid, "cannot kill it: {e}");
                }
            }
        }
        for node in recorded {
            if listed.iter().any(|i| i.vmid == node.node.vmid) {
                keep.push(node);
            } else {
                tracing::warn!(node = %node.node.id, "forgetting a node its cloud no longer has");
            }
        }
    }
    // Nodes of clouds no longer configured stay recorded (and unreachable, if they are).
    keep.extend(by_cloud.into_values().flatten());
    keep
}

/// The default probe interval.
pub(super) const DEFAULT_INTERVAL: Duration = Duration::from_secs(10);
