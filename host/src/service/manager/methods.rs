//! The generic methods the host answers for every manager, with the original names, verbs,
//! params, results and error strings (`ERROR: Wrong state to add_nodes`, ...). Long operations
//! enter their transient state and answer at once; [`Manager::begin`] runs the rest.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::{Arc, Weak};

use super::{Manager, Node};
use anyhow::Result;
use serde_json::{Map, Value, json};

use crate::rpc::{Builtin, BuiltinParam, CallError, Params, Verb};
use crate::service::agent::run_hook;
use crate::service::state::{Operation, ServiceState};

/// The largest `count` one `add_nodes` may ask for.
pub(super) const MAX_COUNT: i64 = 1000;
/// The most of the log file `get_log` returns (its end).
const MAX_LOG: u64 = 16 << 20;
pub(super) fn app_error(message: impl Into<String>) -> CallError {
    CallError::Application {
        message: message.into(),
        data: None,
    }
}

/// The named params of a generic method (ConPaaS clients send a dict; JSON-RPC 2.0 clients
/// may send none).
fn named(params: Params) -> Result<Map<String, Value>, CallError> {
    match params {
        Params::None => Ok(Map::new()),
        Params::Named(map) => Ok(map),
        Params::Positional(_) => Err(app_error(
            "ERROR: Expected named arguments (a JSON object), found a list",
        )),
        Params::Form(_) => Err(app_error("ERROR: Arguments unexpected")),
    }
}

fn no_params(params: Params) -> Result<(), CallError> {
    if named(params)?.is_empty() {
        Ok(())
    } else {
        Err(app_error("ERROR: Arguments unexpected"))
    }
}

/// The `count` of `add_nodes`/`remove_nodes`, with the seed's error strings (and one for
/// counts that are not positive, which the seed silently accepted).
fn count(params: &Map<String, Value>) -> Result<usize, CallError> {
    let value = params
        .get("count")
        .ok_or_else(|| app_error("ERROR: Required argument doesn't exist"))?;
    let n = value
        .as_i64()
        .ok_or_else(|| app_error("ERROR: Expected an integer value for \"count\""))?;
    if !(1..=MAX_COUNT).contains(&n) {
        return Err(app_error(format!(
            "ERROR: Expected a positive integer value for \"count\" (1 to {MAX_COUNT}), found {n}"
        )));
    }
    Ok(n as usize)
}

fn unexpected(params: &Map<String, Value>, allowed: &[&str]) -> Result<(), CallError> {
    match params.keys().find(|k| !allowed.contains(&k.as_str())) {
        Some(k) => Err(app_error(format!(
            "ERROR: Unexpected argument \"{k}\" (expected: {})",
            allowed.join(", ")
        ))),
        None => Ok(()),
    }
}

impl Manager {
    fn get_service_info(&self, params: Params) -> Result<Value, CallError> {
        no_params(params)?;
        Ok(json!({"state": self.state().as_str(), "type": self.settings.service_type}))
    }

    fn startup(self: &Arc<Self>, params: Params) -> Result<Value, CallError> {
        let params = named(params)?;
        unexpected(&params, &["cloud"])?;
        if let Some(cloud) = params.get("cloud") {
            let name = cloud
                .as_str()
                .ok_or_else(|| app_error("ERROR: Expected a string value for \"cloud\""))?;
            if self.cloud_name(Some(name)).is_err() {
                return Err(app_error(format!(
                    "A cloud named '{name}' could not be found"
                )));
            }
        }
        let manager = self.clone();
        self.begin(Operation::Startup, async move {
            run_hook(manager.guest(), "on-startup")
                .await
                .map_err(|e| format!("{e:#}"))
        })
    }

    fn shutdown(self: &Arc<Self>, params: Params) -> Result<Value, CallError> {
        no_params(params)?;
        self.begin(Operation::Shutdown, self.clone().shutdown_work())
    }

    /// Shuts the service down for a reason of the host's own (its credit ran out).
    pub(super) fn shutdown_because(self: &Arc<Self>, cause: String) -> Result<Value, CallError> {
        self.begin_because(
            Operation::Shutdown,
            Some(cause),
            self.clone().shutdown_work(),
        )
    }

    /// Shuts down, then asks the frontend that started the manager to terminate the service
    /// (`FE_TERMINATE_URL`), which stops this manager's node and removes the service.
    fn terminate(self: &Arc<Self>, params: Params) -> Result<Value, CallError> {
        no_params(params)?;
        let Some(billing) = self.settings.billing.clone() else {
            return Err(app_error(
                "ERROR: no frontend started this manager: nothing can terminate it",
            ));
        };
        let manager = self.clone();
        self.begin_because(
            Operation::Shutdown,
            Some("termination requested".into()),
            async move {
                manager.clone().shutdown_work().await?;
                super::billing::request_termination(&billing).await
            },
        )
    }

    /// What shutting down does: the hooks, then every node is deleted.
    async fn shutdown_work(self: Arc<Self>) -> Result<(), String> {
        let manager = self;
        let nodes = manager.lock().nodes.clone();
        let mut problems = Vec::new();
        if !nodes.is_empty()
            && let Err(e) = manager.nodes_hook("on-nodes-removing", &nodes).await
        {
            tracing::warn!("{e}");
        }
        if let Err(e) = run_hook(manager.guest(), "on-shutdown").await {
            tracing::warn!("{e:#}");
        }
        if let Err(e) = manager.delete_nodes(&nodes).await {
            problems.push(e);
        }
        if problems.is_empty() {
            Ok(())
        } else {
            Err(problems.join("; "))
        }
    }

    fn add_nodes(self: &Arc<Self>, params: Params) -> Result<Value, CallError> {
        let params = named(params)?;
        if self.state() != ServiceState::Running {
            return Err(app_error("ERROR: Wrong state to add_nodes"));
        }
        let count = count(&params)?;
        unexpected(&params, &["count", "cloud", "role"])?;
        let cloud = match params.get("cloud") {
            None | Some(Value::Null) => self.cloud_name(None),
            Some(Value::String(name)) => self.cloud_name(Some(name)),
            Some(_) => return Err(app_error("ERROR: Expected a string value for \"cloud\"")),
        }
        .map_err(|e| app_error(format!("ERROR: {e}")))?;
        let role = match params.get("role") {
            None | Some(Value::Null) => self.package.default_role().to_string(),
            Some(Value::String(role)) if self.package.roles.contains(role) => role.clone(),
            Some(other) => {
                return Err(app_error(format!(
                    "ERROR: Unknown role {other}: expected one of {}",
                    self.package.roles.join(", ")
                )));
            }
        };
        let manager = self.clone();
        self.begin(Operation::AddNodes, async move {
            let nodes = manager.create_nodes(count, &role, &cloud, &[]).await?;
            if let Err(e) = manager.nodes_hook("on-nodes-added", &nodes).await {
                // All or nothing: nodes the service could not take in are not kept.
                let _ = manager.delete_nodes(&nodes).await;
                return Err(e);
            }
            Ok(())
        })
    }

    fn remove_nodes(self: &Arc<Self>, params: Params) -> Result<Value, CallError> {
        let params = named(params)?;
        if self.state() != ServiceState::Running {
            return Err(app_error("ERROR: Wrong state to remove_nodes"));
        }
        let count = count(&params)?;
        unexpected(&params, &["count", "role"])?;
        let role = match params.get("role") {
            None | Some(Value::Null) => None,
            Some(Value::String(role)) => Some(role.clone()),
            Some(_) => return Err(app_error("ERROR: Expected a string value for \"role\"")),
        };
        // The oldest nodes go first, as in the seed's helloworld manager.
        let victims: Vec<Node> = {
            let inner = self.lock();
            let candidates: Vec<&Node> = inner
                .nodes
                .iter()
                .filter(|n| role.as_ref().is_none_or(|r| &n.role == r))
                .collect();
            if count > candidates.len() {
                return Err(app_error(format!(
                    "ERROR: Cannot remove {count} nodes: the service has {}",
                    candidates.len()
                )));
            }
            candidates.into_iter().take(count).cloned().collect()
        };
        let manager = self.clone();
        self.begin(Operation::RemoveNodes, async move {
            manager.nodes_hook("on-nodes-removing", &victims).await?;
            manager.delete_nodes(&victims).await
        })
    }

    fn list_nodes(&self, params: Params) -> Result<Value, CallError> {
        no_params(params)?;
        let inner = self.lock();
        if inner.lifecycle.state() != ServiceState::Running {
            return Err(app_error("ERROR: Wrong state to list_nodes"));
        }
        let mut roles: BTreeMap<String, Vec<String>> = self
            .package
            .roles
            .iter()
            .map(|r| (r.clone(), Vec::new()))
            .collect();
        for n in &inner.nodes {
            roles
                .entry(n.role.clone())
                .or_default()
                .push(n.node.id.clone());
        }
        let mut reply = json!(roles);
        // Nodes whose agent did not answer the last health probe (only when there are any,
        // so the original's reply is unchanged for a healthy service).
        if !inner.unreachable.is_empty() {
            reply["unreachable"] = json!(inner.unreachable.keys().collect::<Vec<_>>());
        }
        Ok(reply)
    }

    fn list_clouds(&self, params: Params) -> Result<Value, CallError> {
        no_params(params)?;
        let clouds: Vec<Value> = self
            .clouds
            .iter()
            .map(|(name, driver)| json!({"name": name, "driver": driver}))
            .collect();
        Ok(json!({"clouds": clouds}))
    }

    fn get_node_info(&self, params: Params) -> Result<Value, CallError> {
        let params = named(params)?;
        let id = match params.get("serviceNodeId") {
            None => return Err(app_error("ERROR: Missing arguments")),
            Some(Value::String(id)) => id.clone(),
            Some(_) => return Err(app_error("ERROR: Invalid arguments")),
        };
        if params.len() > 1 {
            return Err(app_error("ERROR: Invalid arguments"));
        }
        let inner = self.lock();
        let node = inner
            .nodes
            .iter()
            .find(|n| n.node.id == id)
            .ok_or_else(|| app_error("ERROR: Invalid arguments"))?;
        let health = match inner.unreachable.get(&node.node.id) {
            Some(unhealthy) => json!({
                "state": "unreachable",
                "reason": unhealthy.reason,
                "failed_probes": unhealthy.probes,
            }),
            None => json!({"state": "running", "reason": "", "failed_probes": 0}),
        };
        Ok(json!({"serviceNode": {
            "id": node.node.id,
            "ip": node.node.ip,
            "private_ip": node.node.private_ip,
            "vmid": node.node.vmid,
            "cloud": node.node.cloud,
            "role": node.role,
            "state": health["state"],
            "reason": health["reason"],
            "failed_probes": health["failed_probes"],
        }}))
    }

    async fn get_log(&self, params: Params) -> Result<Value, CallError> {
        no_params(params)?;
        let path = self.settings.log_file.clone();
        let text = tokio::task::spawn_blocking(move || read_tail(&path, MAX_LOG))
            .await
            .map_err(|e| CallError::Internal(e.to_string()))?
            .map_err(|e| {
                tracing::warn!("cannot read the log file: {e}");
                app_error("Failed to read log")
            })?;
        Ok(json!({"log": text}))
    }

    fn get_service_history(&self, params: Params) -> Result<Value, CallError> {
        no_params(params)?;
        let inner = self.lock();
        Ok(json!({"state_log": inner.lifecycle.history()}))
    }

    /// The generic methods as host methods of the dispatcher.
    pub(super) fn builtins(self: &Arc<Self>) -> Vec<(&'static str, Builtin)> {
        let weak = Arc::downgrade(self);
        let no_params_schema = || Vec::new();
        type Sync = fn(&Arc<Manager>, Params) -> Result<Value, CallError>;
        let sync = |verb: Verb,
                    summary: &'static str,
                    params: Vec<BuiltinParam>,
                    result: Value,
                    f: Sync|
         -> Builtin {
            let weak: Weak<Manager> = weak.clone();
            Builtin::new(verb, summary, result, move |p| {
                let manager = weak.upgrade();
                async move {
                    match manager {
                        Some(m) => f(&m, p),
                        None => Err(CallError::Internal("the manager is stopping".into())),
                    }
                }
            })
            .checking_params(params)
        };
        let int = |name: &'static str, required: bool| BuiltinParam {
            name,
            schema: json!({"type": "integer", "minimum": 1, "maximum": MAX_COUNT}),
            required,
        };
        let string = |name: &'static str, required: bool| BuiltinParam {
            name,
            schema: json!({"type": "string"}),
            required,
        };
        let empty = json!({"type": "object", "maxProperties": 0});
        let log_weak = weak.clone();
        let log = move || {
            let weak = log_weak.clone();
            Builtin::new(
                Verb::Get,
                "the manager's log file: {\"log\": text}",
                json!({"type": "object", "properties": {"log": {"type": "string"}}}),
                move |p| {
                    let manager = weak.upgrade();
                    async move {
                        match manager {
                            Some(m) => m.get_log(p).await,
                            None => Err(CallError::Internal("the manager is stopping".into())),
                        }
                    }
                },
            )
            .checking_params(Vec::new())
        };
        vec![
            (
                "get_service_info",
                sync(
                    Verb::Get,
                    "the service's state and type: {\"state\", \"type\"}",
                    no_params_schema(),
                    json!({"type": "object", "properties": {"state": {"type": "string"}, "type": {"type": "string"}}}),
                    |m, p| m.get_service_info(p),
                ),
            ),
            (
                "startup",
                sync(
                    Verb::Post,
                    "starts the service (INIT, STOPPED or ERROR -> PROLOGUE -> RUNNING); answers at once",
                    vec![string("cloud", false)],
                    empty.clone(),
                    |m, p| m.startup(p),
                ),
            ),
            (
                "shutdown",
                sync(
                    Verb::Post,
                    "removes every node and stops the service (EPILOGUE -> STOPPED); answers at once",
                    no_params_schema(),
                    empty.clone(),
                    |m, p| m.shutdown(p),
                ),
            ),
            (
                "add_nodes",
                sync(
                    Verb::Post,
                    "adds count agent nodes (RUNNING -> ADAPTING -> RUNNING); answers at once",
                    vec![
                        int("count", true),
                        string("cloud", false),
                        string("role", false),
                    ],
                    empty.clone(),
                    |m, p| m.add_nodes(p),
                ),
            ),
            (
                "terminate",
                sync(
                    Verb::Post,
                    "removes every node, then asks the frontend to terminate the service (its manager included); answers at once",
                    no_params_schema(),
                    json!({"type": "object", "maxProperties": 0}),
                    |m, p| m.terminate(p),
                ),
            ),
            (
                "remove_nodes",
                sync(
                    Verb::Post,
                    "removes the count oldest agent nodes (RUNNING -> ADAPTING -> RUNNING); answers at once",
                    vec![int("count", true), string("role", false)],
                    empty,
                    |m, p| m.remove_nodes(p),
                ),
            ),
            (
                "list_nodes",
                sync(
                    Verb::Get,
                    "the node ids by role: {\"<role>\": [ids]}",
                    no_params_schema(),
                    json!({"type": "object", "additionalProperties": {"type": "array", "items": {"type": "string"}}}),
                    |m, p| m.list_nodes(p),
                ),
            ),
            (
                "list_clouds",
                sync(
                    Verb::Get,
                    "the clouds nodes can go to, the default first: {\"clouds\": [{\"name\", \"driver\"}]}",
                    no_params_schema(),
                    json!({"type": "object", "properties": {"clouds": {"type": "array"}}}),
                    |m, p| m.list_clouds(p),
                ),
            ),
            (
                "get_node_info",
                sync(
                    Verb::Get,
                    "one node: {\"serviceNode\": {\"id\", \"ip\", \"vmid\", \"cloud\", \"role\"}}",
                    vec![string("serviceNodeId", true)],
                    json!({"type": "object", "properties": {"serviceNode": {"type": "object"}}}),
                    |m, p| m.get_node_info(p),
                ),
            ),
            (
                "get_service_history",
                sync(
                    Verb::Get,
                    "every state change with its time and reason: {\"state_log\": [...]}",
                    no_params_schema(),
                    json!({"type": "object", "properties": {"state_log": {"type": "array"}}}),
                    |m, p| m.get_service_history(p),
                ),
            ),
            ("get_log", log()),
            ("getLog", log()),
        ]
    }
}

/// The end of a file, at most `max` bytes, as text.
fn read_tail(path: &Path, max: u64) -> std::io::Result<String> {
    use std::io::{Read, Seek, SeekFrom};
    let mut file = std::fs::File::open(path)?;
    let len = file.metadata()?.len();
    if len > max {
        file.seek(SeekFrom::Start(len - max))?;
    }
    let mut bytes = Vec::new();
    file.read_to_end(&mut bytes)?;
    Ok(String::from_utf8_lossy(&bytes).into_owned())
}
