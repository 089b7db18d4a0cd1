//! Node health: the manager probes every agent with `check_agent_process` on a timer
//! (`NODE_HEALTH_INTERVAL_MS`, 10 s by default) and marks the nodes that do not answer as
//! unreachable, with the reason, in `list_nodes` and `get_node_info`; a node that answers
//! again is marked reachable again. Every change is logged. A manager component that exports
//! `paasm:service/health` is then asked which unreachable nodes to replace, and the host
//! replaces them ([`replace`]): the service is `ADAPTING` meanwhile and ends `RUNNING`, or
//! `ERROR` with the reason. Each round also sweeps the clouds' lists for instances no record
//! names, when no node is being created ([`sweep`]).
//!
//! At start, the manager also reconciles its records with what each cloud lists
//! ([`reconcile`]): an instance the cloud runs for this manager but that no record names (the
//! manager was killed while creating it) is killed, never leaked; a recorded node the cloud
//! no longer has is forgotten.

use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::sync::{Arc, Weak};
use std::time::Duration;

use wasmtime::component::Val;

use super::{Manager, Node};
use crate::iaas::controller::{Controller, check_agent_process};
use crate::service::state::{Operation, ServiceState};

/// The optional export a manager replaces unreachable nodes through.
pub(super) const HEALTH: &str = "paasm:service/health";

/// A node whose agent did not answer its last probe.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Unhealthy {
    /// Why the last probe failed.
    pub(super) reason: String,
    /// How many probes in a row it failed.
    pub(super) probes: u32,
}

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

/// Probes every node once, records who answered and, when nodes stay unreachable, asks the
/// component which to replace.
pub(super) async fn check(manager: &Arc<Manager>) {
    probe(manager).await;
    sweep(manager).await;
    let unhealthy: Vec<(Node, Unhealthy)> = {
        let inner = manager.lock();
        if inner.lifecycle.state() != ServiceState::Running {
            return;
        }
        inner
            .nodes
            .iter()
            .filter_map(|n| {
                let u = inner.unreachable.get(&n.node.id)?;
                Some((n.clone(), u.clone()))
            })
            .collect()
    };
    if unhealthy.is_empty() {
        return;
    }
    let chosen = match ask(manager, &unhealthy).await {
        Ok(chosen) => chosen,
        Err(e) => {
            tracing::warn!("{e}");
            return;
        }
    };
    let mut victims = Vec::new();
    for id in chosen {
        match unhealthy.iter().find(|(n, _)| n.node.id == id) {
            Some((n, _)) if !victims.contains(n) => victims.push(n.clone()),
            Some(_) => {}
            None => tracing::warn!(
                node = %id,
                "on-nodes-unreachable named {id:?}, which is not an unreachable node: ignored"
            ),
        }
    }
    if !victims.is_empty() {
        replace(manager, victims);
    }
}

/// The ids the component's `on-nodes-unreachable` names (none when it does not export
/// `health`).
async fn ask(manager: &Manager, unhealthy: &[(Node, Unhealthy)]) -> Result<Vec<String>, String> {
    let guest = manager.guest();
    let Some(func) = guest.find(HEALTH, "on-nodes-unreachable") else {
        return Ok(Vec::new());
    };
    let list = unhealthy
        .iter()
        .map(|(n, u)| {
            Val::Record(vec![
                ("node".into(), n.val()),
                ("reason".into(), Val::String(u.reason.clone())),
                ("failed-probes".into(), Val::U32(u.probes)),
            ])
        })
        .collect();
    let results = guest
        .call(&func, &[Val::List(list)])
        .await
        .map_err(|e| format!("on-nodes-unreachable failed: {e}"))?;
    let mut ids = Vec::new();
    if let Some(Val::List(items)) = results.into_iter().next() {
        for item in items {
            if let Val::String(id) = item {
                ids.push(id);
            }
        }
    }
    Ok(ids)
}

/// Replaces `victims` in the background: `on-nodes-removing`, their deletion, as many new
/// nodes of the same roles on the same clouds, `on-nodes-added`. The service is `ADAPTING`
/// meanwhile; a failure ends in `ERROR` with the reason.
fn replace(manager: &Arc<Manager>, victims: Vec<Node>) {
    let ids: Vec<&str> = victims.iter().map(|n| n.node.id.as_str()).collect();
    let cause = format!("unreachable nodes {} to be replaced", ids.join(", "));
    let worker = manager.clone();
    let begun = manager.begin_because(Operation::ReplaceNodes, Some(cause), async move {
        let m = worker;
        if let Err(e) = m.nodes_hook("on-nodes-removing", &victims).await {
            // They are gone already as far as the service can tell: replace them anyway.
            tracing::warn!("{e}");
        }
        if let Err(e) = m.delete_nodes(&victims).await {
            tracing::warn!("deleting the unreachable nodes: {e}");
        }
        let mut groups: BTreeMap<(String, String), usize> = BTreeMap::new();
        for n in &victims {
            *groups
                .entry((n.role.clone(), n.node.cloud.clone()))
                .or_default() += 1;
        }
        let mut added = Vec::new();
        for ((role, cloud), count) in groups {
            let nodes = m
                .create_nodes(count, &role, &m.cloud_name(Some(&cloud))?, &[])
                .await?;
            let old = victims
                .iter()
                .filter(|v| v.role == role && v.node.cloud == cloud);
            for (old, new) in old.zip(&nodes) {
                tracing::info!(old = %old.node.id, new = %new.node.id, "node replaced");
            }
            added.extend(nodes);
        }
        if let Err(e) = m.nodes_hook("on-nodes-added", &added).await {
            let _ = m.delete_nodes(&added).await;
            return Err(e);
        }
        Ok(())
    });
    if let Err(e) = begun {
        // Another operation began meanwhile: the next probe round asks again.
        tracing::debug!("not replacing now: {e:?}");
    }
}

/// Kills every instance a cloud runs for this manager that no record names, while no node is
/// being created or deleted: a request the cloud carried out after the manager gave up on it
/// (a `RunInstances` that timed out) never leaks a node. Clouds that cannot list now are
/// tried again at the next round.
async fn sweep(manager: &Arc<Manager>) {
    let Ok(_scaling) = manager.scaling.try_lock() else {
        return;
    };
    let recorded: Vec<(String, String)> = manager
        .lock()
        .nodes
        .iter()
        .map(|n| (n.node.cloud.clone(), n.node.vmid.clone()))
        .collect();
    for name in manager.controller.clouds() {
        let Some(cloud) = manager.controller.cloud_arc(&name) else {
            continue;
        };
        let lister = cloud.clone();
        let Ok(Ok(listed)) = tokio::task::spawn_blocking(move || lister.list_vms()).await else {
            continue;
        };
        for instance in listed {
            if recorded.contains(&(name.clone(), instance.vmid.clone())) {
                continue;
            }
            tracing::warn!(
                cloud = %name, vmid = %instance.vmid, ip = %instance.ip,
                "killing an instance this manager never recorded (its cloud carried out a request the manager had given up on)"
            );
            let killer = cloud.clone();
            let vmid = instance.vmid.clone();
            match tokio::task::spawn_blocking(move || killer.kill_instance(&vmid)).await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => {
                    tracing::error!(cloud = %name, vmid = %instance.vmid, "cannot kill it: {e}")
                }
                Err(e) => {
                    tracing::error!(cloud = %name, vmid = %instance.vmid, "cannot kill it: {e}")
                }
            }
        }
    }
}

/// Probes every node once and records who answered.
async fn probe(manager: &Arc<Manager>) {
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
                let probes = match inner.unreachable.get(id) {
                    Some(before) => before.probes.saturating_add(1),
                    None => {
                        tracing::warn!(node = %id, ip = %node.node.ip, "node is unreachable: {reason}");
                        1
                    }
                };
                inner
                    .unreachable
                    .insert(id.clone(), Unhealthy { reason, probes });
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
