//! The manager role: `paasm manager --config FILE` or `paasm manager --service NAME`.
//!
//! A manager serves one service: its component's own methods beside the generic methods the
//! host owns (`get_service_info`, `startup`, `shutdown`, `add_nodes`, `remove_nodes`,
//! `list_nodes`, `get_node_info`, `get_log`/`getLog`, `get_service_history`), with the
//! original names, params, results and error strings. Long operations answer at once and run
//! in the background; each ends in a stable state, `ERROR` with the reason when anything
//! fails (a panic included). The component customises the lifecycle through its hooks and
//! reaches its nodes through the `controller` and `agents` imports ([`NodeControl`]).
//!
//! State, history and nodes live in the manager's database (see `store`), so a restarted
//! manager process recovers its service; nodes of the local cloud outlive the manager.
//! The agents fetch their component and the `paasm` binary from the manager under `/code/`.

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock, Weak};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value, json};
use wasmtime::component::Val;

use super::agent::{LIFECYCLE, run_hook, shutdown_signal};
use super::package::ServicePackage;
use super::state::{Lifecycle, Operation, ServiceState};
use super::store::{ManagerStore, StoredNode};
use super::{WasmSettings, wasm_settings};
use crate::config::IniConfig;
use crate::engine::{Guest, Runtime, RuntimeOptions, digest};
use crate::iaas::cloud::Cloud;
use crate::iaas::context::{ConfigTree, Overrides, Role, substitute_dollar, substitute_percent};
use crate::iaas::controller::{Controller, ControllerOptions, ServiceNode};
use crate::iaas::local::LocalCloud;
use crate::platform::controller::BoxFuture;
use crate::platform::{NodeControl, NodeInfo, PlatformHost, StateStore};
use crate::rpc::client::{self, ClientError};
use crate::rpc::tls::{TlsFiles, server_config};
use crate::rpc::{Builtin, BuiltinParam, CallError, CodeFile, Dispatcher, Params, Verb};

/// The sections and variables every manager configuration must have (the seed's v0.9 list).
pub const REQUIRED: &[(&str, &[&str])] = &[
    (
        "manager",
        &[
            "TYPE",
            "BOOTSTRAP",
            "LOG_FILE",
            "FE_CREDIT_URL",
            "FE_TERMINATE_URL",
            "FE_SERVICE_ID",
        ],
    ),
    ("iaas", &["DRIVER"]),
];

/// The manager section.
const MANAGER: &str = "manager";
/// The default cloud's section (and name, as in the original: nodes `iaas1`, `iaas2`, ...).
const DEFAULT_CLOUD: &str = "iaas";
/// The cloud drivers this build has.
const DRIVERS: &[&str] = &["local"];
/// The largest `count` one `add_nodes` may ask for.
const MAX_COUNT: i64 = 1000;
/// The most of the log file `get_log` returns (its end).
const MAX_LOG: u64 = 16 << 20;

/// Where the manager's configuration comes from.
#[derive(Debug, Clone)]
pub enum ConfigSource {
    /// A configuration file written by whoever started the manager (a frontend).
    File(PathBuf),
    /// Assembled from the configuration tree for a service on a cloud, as a frontend would,
    /// with the manager's files under `var`.
    Service {
        name: String,
        cloud: String,
        var: PathBuf,
    },
}

/// What `paasm manager` was asked to run.
#[derive(Debug, Clone)]
pub struct ManagerOptions {
    pub source: ConfigSource,
    pub listen: String,
    /// The configuration tree (`config/`): contextualization of agents, assembly of configs.
    pub config_dir: PathBuf,
    /// The installed service packages.
    pub services_dir: PathBuf,
    pub cache_dir: Option<PathBuf>,
    pub tls: Option<TlsFiles>,
}

/// The port managers listen on by default (the original's v0.9 port).
pub const DEFAULT_LISTEN: &str = "0.0.0.0:80";

/// Settings read from the manager's configuration.
#[derive(Debug, Clone)]
struct Settings {
    service_type: String,
    bootstrap: String,
    my_ip: String,
    log_file: PathBuf,
    database: PathBuf,
    state_db: PathBuf,
    nodes_dir: PathBuf,
    controller: ControllerOptions,
    agent_timeout: Duration,
    wasm: WasmSettings,
    /// Cloud name -> driver, the default first.
    clouds: Vec<(String, String)>,
    /// Cloud name -> the loopback network of a local cloud (`LOOPBACK_PREFIX`).
    prefixes: BTreeMap<String, [u8; 3]>,
}

/// Reads and checks a manager configuration; on failure every message, as the seed printed
/// them (the missing variables first, then every invalid value).
pub fn load_config(path: &Path) -> Result<IniConfig, Vec<String>> {
    if !path.is_file() {
        return Err(vec![format!(
            "Failed to find configuration file {}",
            path.display()
        )]);
    }
    let ini = IniConfig::load(path).map_err(|e| vec![e.to_string()])?;
    let missing: Vec<String> = ini
        .missing(REQUIRED)
        .iter()
        .map(|m| m.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    settings(&ini)?;
    Ok(ini)
}

fn settings(ini: &IniConfig) -> Result<Settings, Vec<String>> {
    let mut errors = Vec::new();
    let get = |key: &str| ini.get(MANAGER, key).unwrap_or_default().to_string();
    let mut seconds = |key: &str, default: u64, max: u64| -> Duration {
        match ini.get(MANAGER, key) {
            None => Duration::from_secs(default),
            Some(text) => match text.trim().parse::<u64>() {
                Ok(n) if n > 0 && n <= max => Duration::from_secs(n),
                _ => {
                    errors.push(format!(
                        "invalid value for \"{key}\" in section \"{MANAGER}\": expected a whole number of seconds from 1 to {max}, found {text:?}"
                    ));
                    Duration::from_secs(default)
                }
            },
        }
    };
    let boot_timeout = seconds("NODE_BOOT_TIMEOUT", 180, 24 * 3600);
    let agent_timeout = seconds("AGENT_CALL_TIMEOUT", 30, 3600);
    let mut number = |key: &str, default: u64, max: u64, what: &str| -> u64 {
        match ini.get(MANAGER, key) {
            None => default,
            Some(text) => match text.trim().parse::<u64>() {
                Ok(n) if n > 0 && n <= max => n,
                _ => {
                    errors.push(format!(
                        "invalid value for \"{key}\" in section \"{MANAGER}\": expected {what} from 1 to {max}, found {text:?}"
                    ));
                    default
                }
            },
        }
    };
    let attempts = number("NODE_START_ATTEMPTS", 3, 100, "a number of attempts");
    let agent_port = number("AGENT_PORT", 5555, 65535, "a port number") as u16;
    let poll_ms = number("NODE_POLL_INTERVAL_MS", 500, 60_000, "milliseconds");

    let mut clouds = vec![(DEFAULT_CLOUD.to_string(), driver(ini, DEFAULT_CLOUD))];
    if let Some(others) = ini.get(DEFAULT_CLOUD, "OTHER_CLOUDS") {
        // The original split on "," without trimming, silently losing " b" in "a, b".
        for name in others.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !ini.has_section(name) {
                errors.push(format!(
                    "Missing configuration section \"{name}\" (named in OTHER_CLOUDS of section \"{DEFAULT_CLOUD}\")"
                ));
                continue;
            }
            if clouds.iter().any(|(n, _)| n == name) {
                errors.push(format!("cloud \"{name}\" is named twice in OTHER_CLOUDS"));
                continue;
            }
            clouds.push((name.to_string(), driver(ini, name)));
        }
    }
    let mut prefixes = BTreeMap::new();
    for (name, _) in &clouds {
        if let Some(text) = ini.get(name, "LOOPBACK_PREFIX") {
            match crate::iaas::local::parse_prefix(text) {
                Ok(prefix) => {
                    prefixes.insert(name.clone(), prefix);
                }
                Err(e) => errors.push(format!(
                    "invalid value for \"LOOPBACK_PREFIX\" in section \"{name}\": {e}"
                )),
            }
        }
    }
    for (name, driver) in &clouds {
        if driver.is_empty() {
            errors.push(format!(
                "Missing configuration variable \"DRIVER\" in section \"{name}\""
            ));
        } else if !DRIVERS.contains(&driver.as_str()) {
            errors.push(format!(
                "invalid value for \"DRIVER\" in section \"{name}\": unknown cloud driver {driver:?}; available drivers: {}",
                DRIVERS.join(", ")
            ));
        }
    }
    let wasm = match wasm_settings(ini) {
        Ok(w) => Some(w),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    let var_cache = ini
        .get(MANAGER, "VAR_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&get("LOG_FILE"))
                .parent()
                .unwrap_or(Path::new("."))
                .to_path_buf()
        });
    let path_or = |key: &str, default: PathBuf| {
        ini.get(MANAGER, key)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or(default)
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Settings {
        service_type: get("TYPE"),
        bootstrap: get("BOOTSTRAP").trim_end_matches('/').to_string(),
        my_ip: ini
            .get(MANAGER, "MY_IP")
            .filter(|v| !v.is_empty())
            .unwrap_or("127.0.0.1")
            .to_string(),
        log_file: PathBuf::from(get("LOG_FILE")),
        database: path_or("DATABASE", var_cache.join("paasm-manager.sqlite")),
        state_db: path_or("STATE_DB", var_cache.join("paasm-state.sqlite")),
        nodes_dir: path_or("NODES_DIR", var_cache.join("nodes")),
        controller: ControllerOptions {
            agent_port,
            boot_timeout,
            poll_interval: Duration::from_millis(poll_ms),
            max_attempts: attempts as u32,
        },
        agent_timeout,
        wasm: wasm.expect("no errors"),
        clouds,
        prefixes,
    })
}

fn driver(ini: &IniConfig, section: &str) -> String {
    ini.get(section, "DRIVER")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Assembles the configuration of a manager for `name` on `cloud` from the configuration
/// tree, as a frontend would (`%VAR%` layer), with the values the boot script would give the
/// shell variables (`$VAR` layer), and writes it to `<var>/config.cfg`. Returns its path.
pub fn assemble_config(
    tree: &ConfigTree,
    name: &str,
    cloud: &str,
    var: &Path,
    url: &str,
    ip: &str,
) -> Result<PathBuf> {
    let text = tree
        .config(Role::Manager, name, cloud)
        .with_context(|| format!("cannot assemble the manager configuration of {name}"))?;
    let percent: BTreeMap<String, String> = [
        ("CONPAAS_SERVICE_TYPE", name),
        ("CONPAAS_SERVICE_ID", "1"),
        ("CLOUD", cloud),
        // No frontend: credits are not reported anywhere.
        ("FRONTEND_URL", "none"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let var = std::path::absolute(var).context("cannot resolve the VAR directory")?;
    let dollar: BTreeMap<String, String> = [
        ("SOURCE", url.to_string()),
        ("IP_PUBLIC", ip.to_string()),
        ("ROOT_DIR", var.display().to_string()),
        ("CPS_HOME", var.join("paasm").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let text = substitute_dollar(&substitute_percent(&text, &percent), &dollar);
    std::fs::create_dir_all(&var).with_context(|| format!("cannot create {}", var.display()))?;
    let path = var.join("config.cfg");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// A node of the service.
#[derive(Debug, Clone, PartialEq)]
struct Node {
    node: ServiceNode,
    role: String,
    created: f64,
}

impl Node {
    fn info(&self) -> NodeInfo {
        NodeInfo {
            id: self.node.id.clone(),
            ip: self.node.ip.clone(),
            role: self.role.clone(),
            cloud: self.node.cloud.clone(),
        }
    }

    fn stored(&self) -> StoredNode {
        StoredNode {
            id: self.node.id.clone(),
            vmid: self.node.vmid.clone(),
            ip: self.node.ip.clone(),
            private_ip: self.node.private_ip.clone(),
            cloud: self.node.cloud.clone(),
            role: self.role.clone(),
            created: self.created,
        }
    }

    fn from_stored(s: StoredNode) -> Self {
        Self {
            node: ServiceNode {
                id: s.id,
                vmid: s.vmid,
                ip: s.ip,
                private_ip: s.private_ip,
                cloud: s.cloud,
            },
            role: s.role,
            created: s.created,
        }
    }
}

struct Inner {
    lifecycle: Lifecycle,
    nodes: Vec<Node>,
}

/// One service's manager: lifecycle, nodes, controller and component.
pub struct Manager {
    package: ServicePackage,
    settings: Settings,
    tree: ConfigTree,
    controller: Controller,
    /// Cloud name -> driver name, the default first.
    clouds: Vec<(String, String)>,
    store: ManagerStore,
    inner: Mutex<Inner>,
    guest: OnceLock<Arc<Guest>>,
    /// Serialises node creation and deletion (the original's terminate lock, released).
    scaling: tokio::sync::Mutex<()>,
}

fn now() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs_f64())
        .unwrap_or_default()
}

fn app_error(message: impl Into<String>) -> CallError {
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
    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn guest(&self) -> &Arc<Guest> {
        self.guest.get().expect("the manager's component is loaded")
    }

    /// Saves the current lifecycle and nodes; a failure is logged (the in-memory state stays
    /// authoritative while the process lives).
    fn save(&self, inner: &Inner) {
        let nodes: Vec<StoredNode> = inner.nodes.iter().map(Node::stored).collect();
        if let Err(e) = self.store.save(&inner.lifecycle, &nodes) {
            tracing::error!("cannot save the manager's state: {e}");
        }
    }

    fn state(&self) -> ServiceState {
        self.lock().lifecycle.state()
    }

    /// The name of a cloud as the caller gave it (`None` or `"default"`: the default cloud).
    fn cloud_name(&self, cloud: Option<&str>) -> Result<String, String> {
        match cloud {
            None | Some("default") | Some("") => Ok(self.clouds[0].0.clone()),
            Some(name) if self.clouds.iter().any(|(n, _)| n == name) => Ok(name.to_string()),
            Some(name) => Err(format!(
                "Unknown cloud: {name}. Available clouds: {}",
                self.cloud_names().join(", ")
            )),
        }
    }

    fn cloud_names(&self) -> Vec<String> {
        self.clouds.iter().map(|(n, _)| n.clone()).collect()
    }

    fn driver_of(&self, cloud: &str) -> &str {
        self.clouds
            .iter()
            .find(|(n, _)| n == cloud)
            .map(|(_, d)| d.as_str())
            .unwrap_or("local")
    }

    /// The boot script of a new agent node: the tree's agent script for the cloud's driver,
    /// with the manager's `$VAR` replacements, then the component's, then the caller's.
    async fn agent_script(
        &self,
        role: &str,
        cloud: &str,
        extra: &[(String, String)],
    ) -> Result<String, String> {
        let driver = self.driver_of(cloud);
        let template = self
            .tree
            .script(Role::Agent, &self.package.name, driver)
            .map_err(|e| e.to_string())?;
        let s = &self.settings;
        let mut vars: BTreeMap<String, String> = [
            ("SOURCE", s.bootstrap.clone()),
            ("AGENT_TYPE", s.service_type.clone()),
            ("AGENT_ROLE", role.to_string()),
            ("MANAGER_IP", s.my_ip.clone()),
            ("AGENT_PORT", s.controller.agent_port.to_string()),
            ("CLOUD_NAME", cloud.to_string()),
            ("CLOUD_TYPE", driver.to_string()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        vars.extend(self.agent_context(role, cloud).await?);
        vars.extend(extra.iter().cloned());
        Ok(substitute_dollar(&template, &vars))
    }

    /// The component's `agent-context` replacements.
    async fn agent_context(
        &self,
        role: &str,
        cloud: &str,
    ) -> Result<Vec<(String, String)>, String> {
        let guest = self.guest();
        let Some(func) = guest.find(LIFECYCLE, "agent-context") else {
            return Ok(Vec::new());
        };
        let args = [Val::String(role.into()), Val::String(cloud.into())];
        let results = guest
            .call(&func, &args)
            .await
            .map_err(|e| format!("agent-context failed: {e}"))?;
        let mut pairs = Vec::new();
        if let Some(Val::List(items)) = results.into_iter().next() {
            for item in items {
                if let Val::Tuple(kv) = item
                    && let [Val::String(k), Val::String(v)] = kv.as_slice()
                {
                    pairs.push((k.clone(), v.clone()));
                }
            }
        }
        Ok(pairs)
    }

    /// Runs a hook that takes the list of nodes.
    async fn nodes_hook(&self, hook: &str, nodes: &[Node]) -> Result<(), String> {
        let guest = self.guest();
        let Some(func) = guest.find(LIFECYCLE, hook) else {
            return Ok(());
        };
        let list = nodes
            .iter()
            .map(|n| {
                Val::Record(vec![
                    ("id".into(), Val::String(n.node.id.clone())),
                    ("ip".into(), Val::String(n.node.ip.clone())),
                    ("role".into(), Val::String(n.role.clone())),
                    ("cloud".into(), Val::String(n.node.cloud.clone())),
                ])
            })
            .collect();
        let results = guest
            .call(&func, &[Val::List(list)])
            .await
            .map_err(|e| format!("{hook} failed: {e}"))?;
        match results.into_iter().next() {
            Some(Val::Result(Err(payload))) => Err(match payload.as_deref() {
                Some(Val::String(s)) => format!("{hook} failed: {s}"),
                _ => format!("{hook} failed"),
            }),
            _ => Ok(()),
        }
    }

    /// Creates nodes and adds them to the service (persisted before anything else happens,
    /// so a crash cannot lose track of running nodes).
    async fn create_nodes(
        &self,
        count: usize,
        role: &str,
        cloud: &str,
        extra: &[(String, String)],
    ) -> Result<Vec<Node>, String> {
        let script = self.agent_script(role, cloud, extra).await?;
        let _scaling = self.scaling.lock().await;
        tracing::info!(count, role, cloud, "creating nodes");
        let created = self
            .controller
            .create_nodes(count, cloud, &script)
            .await
            .map_err(|e| e.to_string())?;
        let at = now();
        let nodes: Vec<Node> = created
            .into_iter()
            .map(|node| Node {
                node,
                role: role.to_string(),
                created: at,
            })
            .collect();
        let mut inner = self.lock();
        inner.nodes.extend(nodes.iter().cloned());
        self.save(&inner);
        drop(inner);
        for n in &nodes {
            tracing::info!(node = %n.node.id, ip = %n.node.ip, role = %n.role, "node added");
        }
        Ok(nodes)
    }

    /// Kills nodes and forgets them, whatever the cloud says; the cloud's errors are returned.
    async fn delete_nodes(&self, nodes: &[Node]) -> Result<(), String> {
        let _scaling = self.scaling.lock().await;
        let service_nodes: Vec<ServiceNode> = nodes.iter().map(|n| n.node.clone()).collect();
        let errors = self.controller.delete_nodes(&service_nodes).await;
        let mut inner = self.lock();
        inner
            .nodes
            .retain(|n| !nodes.iter().any(|gone| gone.node.id == n.node.id));
        self.save(&inner);
        drop(inner);
        for n in nodes {
            tracing::info!(node = %n.node.id, "node removed");
        }
        if errors.is_empty() {
            Ok(())
        } else {
            Err(errors.join("; "))
        }
    }

    /// Enters the transient state of `op` (or answers the original's refusal), then runs
    /// `work` in the background; whatever `work` does, a panic included, the operation ends
    /// in its stable state or in `ERROR` with the reason.
    fn begin<F>(self: &Arc<Self>, op: Operation, work: F) -> Result<Value, CallError>
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        {
            let mut inner = self.lock();
            inner.lifecycle.begin(op, now()).map_err(app_error)?;
            self.save(&inner);
        }
        tracing::info!("{} started", op.method());
        let manager = self.clone();
        tokio::spawn(async move {
            let outcome = match tokio::spawn(work).await {
                Ok(outcome) => outcome,
                Err(e) if e.is_panic() => Err(format!("internal error: {}", panic_message(e))),
                Err(e) => Err(format!("internal error: {e}")),
            };
            match &outcome {
                Ok(()) => tracing::info!("{} done", op.method()),
                Err(reason) => tracing::error!("{} failed: {reason}", op.method()),
            }
            let mut inner = manager.lock();
            inner.lifecycle.finish(outcome, now());
            manager.save(&inner);
        });
        Ok(json!({}))
    }

    // The generic methods.

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
        let manager = self.clone();
        self.begin(Operation::Shutdown, async move {
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
        })
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
        Ok(json!(roles))
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
        Ok(json!({"serviceNode": {
            "id": node.node.id,
            "ip": node.node.ip,
            "private_ip": node.node.private_ip,
            "vmid": node.node.vmid,
            "cloud": node.node.cloud,
            "role": node.role,
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
    fn builtins(self: &Arc<Self>) -> Vec<(&'static str, Builtin)> {
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

fn panic_message(e: tokio::task::JoinError) -> String {
    let payload = e.into_panic();
    if let Some(s) = payload.downcast_ref::<&str>() {
        s.to_string()
    } else if let Some(s) = payload.downcast_ref::<String>() {
        s.clone()
    } else {
        "a task panicked".into()
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

/// The component's view of the manager.
struct Nodes(Weak<Manager>);

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

/// A loaded manager, ready to serve.
pub struct LoadedManager {
    pub manager: Arc<Manager>,
    pub dispatcher: Arc<Dispatcher>,
}

/// Loads the manager for `ini`: its package, database (recovering a previous run), clouds and
/// component.
pub fn load(ini: IniConfig, options: &ManagerOptions) -> Result<LoadedManager> {
    let settings = settings(&ini).map_err(|errors| anyhow::anyhow!(errors.join("\n")))?;
    for key in ["ETC", "VAR_TMP", "VAR_CACHE", "VAR_RUN"] {
        if let Some(dir) = ini.get(MANAGER, key).filter(|d| !d.is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the {key} directory {dir}"))?;
        }
    }
    let package = ServicePackage::find(&options.services_dir, &settings.service_type)?;
    let read = |path: &Option<PathBuf>| -> Result<Option<String>> {
        path.as_ref()
            .map(|p| {
                std::fs::read_to_string(p).with_context(|| format!("cannot read {}", p.display()))
            })
            .transpose()
    };
    let tree = ConfigTree::new(&options.config_dir).with_overrides(
        Role::Agent,
        Overrides {
            annex: read(&package.agent.config)?,
            start: read(&package.agent.start)?,
        },
    );
    // Fail now, not at the first add_nodes, when the tree cannot contextualize agents.
    for (_, driver) in &settings.clouds {
        tree.script(Role::Agent, &package.name, driver)
            .with_context(|| format!("cannot contextualize agents of {}", package.name))?;
    }

    let store = ManagerStore::open(&settings.database)?;
    let (mut lifecycle, nodes) = match store.load()? {
        Some(saved) => {
            tracing::info!(
                state = %saved.lifecycle.state(),
                nodes = saved.nodes.len(),
                "recovered the service from {}",
                settings.database.display()
            );
            (
                saved.lifecycle,
                saved.nodes.into_iter().map(Node::from_stored).collect(),
            )
        }
        None => (Lifecycle::new(now()), Vec::new()),
    };
    lifecycle.recover(now());

    let mut controller = Controller::new(settings.controller);
    for (name, driver) in &settings.clouds {
        let cloud: Arc<dyn Cloud> = match driver.as_str() {
            "local" => Arc::new(
                LocalCloud::new(name, &settings.nodes_dir.join(name)).with_prefix(
                    settings
                        .prefixes
                        .get(name)
                        .copied()
                        .unwrap_or(crate::iaas::local::DEFAULT_PREFIX),
                ),
            ),
            other => bail!("unknown cloud driver {other:?}"),
        };
        controller.add_cloud(cloud);
    }

    let manager = Arc::new(Manager {
        clouds: settings.clouds.clone(),
        package,
        settings,
        tree,
        controller,
        store,
        inner: Mutex::new(Inner { lifecycle, nodes }),
        guest: OnceLock::new(),
        scaling: tokio::sync::Mutex::new(()),
    });
    manager.save(&manager.lock());

    let component = &manager.package.manager.component;
    let bytes = std::fs::read(component)
        .with_context(|| format!("cannot read component {}", component.display()))?;
    let name = format!("{}-manager", manager.package.name);
    let state = StateStore::open(&manager.settings.state_db, &name)?;
    let mut host = PlatformHost::new(name.clone(), Arc::new(ini), state);
    host.nodes = Some(Arc::new(Nodes(Arc::downgrade(&manager))));
    let wasm = manager.settings.wasm;
    let runtime = Runtime::new(&RuntimeOptions {
        cache_dir: options.cache_dir.clone(),
        max_memory: wasm.limits.memory,
        ..RuntimeOptions::default()
    })?;
    let guest = runtime
        .load(&name, &bytes, Arc::new(host), wasm.limits, wasm.policy)
        .with_context(|| format!("cannot load {}", component.display()))?;
    let guest = Arc::new(guest);
    let _ = manager.guest.set(guest.clone());

    let agent_bytes = std::fs::read(&manager.package.agent.component).with_context(|| {
        format!(
            "cannot read component {}",
            manager.package.agent.component.display()
        )
    })?;
    let exe = std::env::current_exe().context("cannot find the paasm binary")?;
    let files = [
        (
            "agent.wasm".to_string(),
            CodeFile::Bytes(agent_bytes.into()),
        ),
        (
            "paasm-path".to_string(),
            CodeFile::Bytes(format!("{}\n", exe.display()).into()),
        ),
        ("paasm".to_string(), CodeFile::Path(exe)),
    ];
    let version = format!(
        "{} {} (sha256:{})",
        manager.package.name,
        manager.package.version,
        &digest(&bytes)[..16]
    );
    let dispatcher = Dispatcher::new(&name, &version, guest, manager.builtins())
        .with_context(|| format!("component {name} cannot be served"))?
        .with_files(files);
    tracing::info!(
        service = %manager.package.name,
        state = %manager.state(),
        methods = dispatcher.methods().iter().count(),
        "manager loaded"
    );
    Ok(LoadedManager {
        manager,
        dispatcher: Arc::new(dispatcher),
    })
}

/// A manager whose port is open and whose configuration passed its checks.
pub struct Prepared {
    listener: std::net::TcpListener,
    pub ini: IniConfig,
    /// The configuration file (the assembled one with `--service`).
    pub config_path: PathBuf,
}

/// Opens the manager's port and reads (or, for a service, assembles) its configuration;
/// on failure every message, as the seed printed them.
pub fn prepare(options: &ManagerOptions) -> Result<Prepared, Vec<String>> {
    let one = |e: anyhow::Error| vec![format!("{e:#}")];
    let addr = resolve(&options.listen).map_err(one)?;
    let listener = std::net::TcpListener::bind(addr)
        .map_err(|e| vec![format!("cannot listen on {addr}: {e}")])?;
    listener
        .set_nonblocking(true)
        .map_err(|e| vec![format!("cannot listen on {addr}: {e}")])?;
    let local = listener.local_addr().map_err(|e| vec![e.to_string()])?;
    let config_path = match &options.source {
        ConfigSource::File(path) => path.clone(),
        ConfigSource::Service { name, cloud, var } => {
            let host = if local.ip().is_unspecified() {
                "127.0.0.1".to_string()
            } else {
                local.ip().to_string()
            };
            let scheme = if options.tls.is_some() {
                "https"
            } else {
                "http"
            };
            let url = format!("{scheme}://{host}:{}", local.port());
            let tree = ConfigTree::new(&options.config_dir);
            assemble_config(&tree, name, cloud, var, &url, &host).map_err(one)?
        }
    };
    let ini = load_config(&config_path)?;
    Ok(Prepared {
        listener,
        ini,
        config_path,
    })
}

fn resolve(listen: &str) -> Result<SocketAddr> {
    use std::net::ToSocketAddrs;
    listen
        .to_socket_addrs()
        .with_context(|| format!("invalid listen address {listen:?}: expected HOST:PORT"))?
        .next()
        .with_context(|| format!("listen address {listen:?} resolves to nothing"))
}

/// Runs a prepared manager until SIGINT or SIGTERM. Prints `paasm manager listening on
/// http://ADDR` (or `https://`) on stdout once it serves. Nodes keep running when the manager
/// stops: a manager started again on the same VAR directory takes them over.
pub async fn run(prepared: Prepared, options: ManagerOptions) -> Result<()> {
    let tls = options
        .tls
        .as_ref()
        .map(server_config)
        .transpose()
        .context("cannot set up TLS")?;
    let listener = tokio::net::TcpListener::from_std(prepared.listener)
        .context("cannot serve on the manager's port")?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    let loaded = tokio::task::block_in_place(|| load(prepared.ini, &options))?;
    tracing::info!(%local, scheme, config = %prepared.config_path.display(), "manager listening");
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "paasm manager listening on {scheme}://{local}")?;
        stdout.flush()?;
    }
    crate::rpc::serve(listener, loaded.dispatcher.clone(), tls, shutdown_signal()).await;
    tracing::info!("manager stopping; its nodes keep running");
    Ok(())
}
