//! The manager role: `paasm manager --config FILE` or `paasm manager --service NAME`.
//!
//! A manager serves one service: its component's own methods beside the generic methods the
//! host owns (`get_service_info`, `startup`, `shutdown`, `add_nodes`, `remove_nodes`,
//! `list_nodes`, `list_clouds`, `get_node_info`, `get_log`/`getLog`, `get_service_history`), with the
//! original names, params, results and error strings. Long operations answer at once and run
//! in the background; each ends in a stable state, `ERROR` with the reason when anything
//! fails (a panic included). The component customises the lifecycle through its hooks and
//! reaches its nodes through the `controller` and `agents` imports
//! ([`NodeControl`](crate::platform::NodeControl)).
//!
//! State, history and nodes live in the manager's database (see `store`), so a restarted
//! manager process recovers its service; nodes of the local cloud outlive the manager.
//! The agents fetch their component and the `paasm` binary from the manager under `/code/`.
//!
//! - `settings`: the configuration file, its checks and its assembly for `--service`,
//! - `methods`: the generic methods, as host methods of the dispatcher,
//! - `component`: what the manager component reaches through `controller` and `agents`.

mod billing;
mod component;
mod health;
mod methods;
mod settings;

pub use settings::{REQUIRED, assemble_config, load_config};

use std::collections::BTreeMap;
use std::io::Write;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex, OnceLock};
use std::time::{SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use wasmtime::component::Val;

use super::agent::{LIFECYCLE, shutdown_signal};
use super::package::ServicePackage;
use super::state::{Lifecycle, Operation, ServiceState};
use super::store::{ManagerStore, StoredNode};
use crate::config::IniConfig;
use crate::engine::{Guest, Runtime, RuntimeOptions, digest};
use crate::iaas::cloud::Cloud;
use crate::iaas::context::{ConfigTree, Role, substitute_dollar};
use crate::iaas::controller::{Controller, ServiceNode};
use crate::iaas::ec2::Ec2Cloud;
use crate::iaas::local::LocalCloud;
use crate::iaas::netns::NetnsCloud;
use crate::iaas::opennebula::OpenNebulaCloud;
use crate::platform::{NodeInfo, PlatformHost, StateStore};
use crate::rpc::tls::{TlsFiles, server_config};
use crate::rpc::{CallError, CodeFile, Dispatcher};

use component::Nodes;
use methods::app_error;
use settings::{MANAGER, Settings};

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

    /// The node as the component's hooks take it (`paasm:platform/types.node`).
    fn val(&self) -> Val {
        Val::Record(vec![
            ("id".into(), Val::String(self.node.id.clone())),
            ("ip".into(), Val::String(self.node.ip.clone())),
            ("role".into(), Val::String(self.role.clone())),
            ("cloud".into(), Val::String(self.node.cloud.clone())),
        ])
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
    /// Node id -> why its last health probe failed, and how many it failed in a row.
    unreachable: BTreeMap<String, health::Unhealthy>,
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
        // Nodes on a cloud's own network reach the manager at this machine's address there.
        let (source, manager_ip) = match self.controller.gateway(cloud) {
            Some(gateway) => (with_host(&s.bootstrap, &gateway), gateway),
            None => (s.bootstrap.clone(), s.my_ip.clone()),
        };
        let mut vars: BTreeMap<String, String> = [
            ("SOURCE", source),
            ("AGENT_TYPE", s.service_type.clone()),
            ("AGENT_ROLE", role.to_string()),
            ("MANAGER_IP", manager_ip),
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
        let list = nodes.iter().map(Node::val).collect();
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
            .create_nodes_as(count, cloud, &script, role)
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
        // What they owe, before they go (a refusal is the periodic check's business).
        let _ = self.bill(nodes).await;
        let _scaling = self.scaling.lock().await;
        let service_nodes: Vec<ServiceNode> = nodes.iter().map(|n| n.node.clone()).collect();
        let errors = self.controller.delete_nodes(&service_nodes).await;
        let mut inner = self.lock();
        inner
            .nodes
            .retain(|n| !nodes.iter().any(|gone| gone.node.id == n.node.id));
        for gone in nodes {
            inner.unreachable.remove(&gone.node.id);
        }
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
        self.begin_because(op, None, work)
    }

    /// [`Manager::begin`] for a reason of the host's own, kept in the history.
    fn begin_because<F>(
        self: &Arc<Self>,
        op: Operation,
        cause: Option<String>,
        work: F,
    ) -> Result<Value, CallError>
    where
        F: Future<Output = Result<(), String>> + Send + 'static,
    {
        {
            let mut inner = self.lock();
            inner
                .lifecycle
                .begin_because(op, cause, now())
                .map_err(app_error)?;
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
}

/// `url` (`SCHEME://HOST[:PORT][/PATH]`) with its host replaced by `host`.
fn with_host(url: &str, host: &str) -> String {
    let Some((scheme, rest)) = url.split_once("://") else {
        return url.to_string();
    };
    let (authority, path) = rest.split_at(rest.find('/').unwrap_or(rest.len()));
    let port = match authority.rsplit_once(':') {
        Some((_, port)) if !port.contains(']') => format!(":{port}"),
        _ => String::new(),
    };
    format!("{scheme}://{host}{port}{path}")
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

/// A loaded manager, ready to serve.
pub struct LoadedManager {
    pub manager: Arc<Manager>,
    pub dispatcher: Arc<Dispatcher>,
}

/// Loads the manager for `ini`: its package, database (recovering a previous run), clouds and
/// component.
pub fn load(ini: IniConfig, options: &ManagerOptions) -> Result<LoadedManager> {
    let settings = settings::read(&ini).map_err(|errors| anyhow::anyhow!(errors.join("\n")))?;
    for key in ["ETC", "VAR_TMP", "VAR_CACHE", "VAR_RUN"] {
        if let Some(dir) = ini.get(MANAGER, key).filter(|d| !d.is_empty()) {
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the {key} directory {dir}"))?;
        }
    }
    let package = ServicePackage::find(&options.services_dir, &settings.service_type)?;
    let tree = package.config_tree(&options.config_dir)?;
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
            "netns" => Arc::new(
                NetnsCloud::new(
                    name,
                    &settings.nodes_dir.join(name),
                    settings.networks.get(name).copied(),
                )
                .map_err(|e| anyhow::anyhow!("{e}"))?,
            ),
            "ec2" => {
                let ec2 = settings.ec2.get(name).cloned().context("ec2 settings")?;
                let tags = vec![
                    ("paasm:service".to_string(), settings.service_type.clone()),
                    (
                        "paasm:service-id".to_string(),
                        ini.get(MANAGER, "FE_SERVICE_ID")
                            .unwrap_or_default()
                            .trim()
                            .to_string(),
                    ),
                ];
                Arc::new(
                    Ec2Cloud::new(name, ec2, &settings.nodes_dir.join(name), tags)
                        .map_err(|e| anyhow::anyhow!("{e}"))?,
                )
            }
            "opennebula" => {
                let one = settings
                    .opennebula
                    .get(name)
                    .cloned()
                    .context("opennebula settings")?;
                Arc::new(
                    OpenNebulaCloud::new(
                        name,
                        one,
                        &settings.nodes_dir.join(name),
                        &settings.service_type,
                    )
                    .map_err(|e| anyhow::anyhow!("{e}"))?,
                )
            }
            other => bail!("unknown cloud driver {other:?}"),
        };
        controller.add_cloud(cloud);
    }
    // Instances started by a manager killed while creating them are killed now.
    let nodes = health::reconcile(&controller, nodes);

    let manager = Arc::new(Manager {
        clouds: settings.clouds.clone(),
        package,
        settings,
        tree,
        controller,
        store,
        inner: Mutex::new(Inner {
            lifecycle,
            nodes,
            unreachable: BTreeMap::new(),
        }),
        guest: OnceLock::new(),
        scaling: tokio::sync::Mutex::new(()),
    });
    manager.save(&manager.lock());
    billing::spawn(&manager);
    health::spawn(&manager);

    let component = &manager.package.manager.component;
    // What runs and what agents fetch is checked against the installed package's manifest.
    let bytes = manager.package.manager.read_verified("manager")?;
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

    let agent_bytes = manager.package.agent.read_verified("agent")?;
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
            let package =
                ServicePackage::find(&options.services_dir, name).map_err(|e| one(e.into()))?;
            let tree = package
                .config_tree(&options.config_dir)
                .map_err(|e| one(e.into()))?;
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
    let shutdown = shutdown_signal()?;
    tracing::info!(%local, scheme, config = %prepared.config_path.display(), "manager listening");
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "paasm manager listening on {scheme}://{local}")?;
        stdout.flush()?;
    }
    // Shared: the IaaS drivers the manager's methods call block in place.
    let threads = crate::rpc::Threads::Shared;
    crate::rpc::serve(listener, loaded.dispatcher.clone(), tls, threads, shutdown).await;
    tracing::info!("manager stopping; its nodes keep running");
    Ok(())
}
