//! The agent role: `paasm agent --config FILE --component FILE.wasm`.
//!
//! As the seed's `cpsagent`: read the INI configuration, check the required variables with the
//! original messages, then serve the agent component over HTTP with the host's own
//! `check_agent_process` (the liveness probe the manager's controller polls) beside the
//! component's methods. The component's `on-startup` hook runs before the port opens and
//! `on-shutdown` after it closes.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde_json::json;
use wasmtime::component::Val;

use super::{WasmSettings, wasm_settings};
use crate::config::IniConfig;
use crate::engine::{Guest, Runtime, RuntimeOptions, digest};
use crate::platform::{PlatformHost, StateStore};
use crate::rpc::tls::{TlsFiles, server_config};
use crate::rpc::{Builtin, Dispatcher, Params, Verb};

/// The section and variables every agent configuration must have (the seed's list).
pub const REQUIRED: &[(&str, &[&str])] = &[(
    "agent",
    &["LOG_FILE", "ETC", "VAR_TMP", "VAR_CACHE", "VAR_RUN"],
)];

/// The port the original agents listened on.
pub const DEFAULT_LISTEN: &str = "0.0.0.0:5555";

/// The WIT interface of the lifecycle hooks.
pub const LIFECYCLE: &str = "paasm:service/lifecycle";

/// What `paasm agent` was asked to run.
#[derive(Debug, Clone)]
pub struct AgentOptions {
    pub config: PathBuf,
    pub component: PathBuf,
    pub listen: String,
    pub cache_dir: Option<PathBuf>,
    /// Serve HTTPS with these files instead of plain HTTP.
    pub tls: Option<TlsFiles>,
    /// Where connections are served: the agent's own threads (one per CPU by default).
    pub threads: crate::rpc::Threads,
}

/// An agent configuration that passed the seed's checks.
pub struct AgentConfig {
    pub ini: IniConfig,
    pub wasm: WasmSettings,
}

/// Reads and checks the configuration; on failure returns every message the seed would print.
pub fn load_config(path: &Path) -> Result<AgentConfig, Vec<String>> {
    let ini = super::read_required(path, REQUIRED)?;
    let wasm = wasm_settings(&ini)?;
    Ok(AgentConfig { ini, wasm })
}

/// A loaded agent, ready to serve.
pub struct Agent {
    pub dispatcher: Arc<Dispatcher>,
    pub guest: Arc<Guest>,
}

impl Agent {
    /// Opens the agent's state, loads its component and runs its `on-startup` hook.
    pub async fn load(config: AgentConfig, options: &AgentOptions) -> Result<Self> {
        let ini = &config.ini;
        for key in ["ETC", "VAR_TMP", "VAR_CACHE", "VAR_RUN"] {
            let dir = ini.get("agent", key).unwrap_or_default();
            std::fs::create_dir_all(dir)
                .with_context(|| format!("cannot create the {key} directory {dir}"))?;
        }
        let bytes = std::fs::read(&options.component)
            .with_context(|| format!("cannot read component {}", options.component.display()))?;
        let name = options
            .component
            .file_stem()
            .and_then(|s| s.to_str())
            .unwrap_or("agent")
            .to_string();
        let scope = ini.get("agent", "TYPE").unwrap_or(&name).to_string();
        let state_path = match ini.get("agent", "STATE_DB") {
            Some(path) if !path.is_empty() => PathBuf::from(path),
            _ => Path::new(ini.get("agent", "VAR_CACHE").unwrap_or(".")).join("paasm-state.sqlite"),
        };
        let state = StateStore::open(&state_path, &scope)?;
        let host = Arc::new(PlatformHost::new(
            name.clone(),
            Arc::new(ini.clone()),
            state,
        ));
        let runtime = Runtime::new(&RuntimeOptions {
            cache_dir: options.cache_dir.clone(),
            max_memory: config.wasm.limits.memory,
            ..RuntimeOptions::default()
        })?;
        let guest = runtime
            .load(&name, &bytes, host, config.wasm.limits, config.wasm.policy)
            .with_context(|| format!("cannot load {}", options.component.display()))?;
        let guest = Arc::new(guest);
        let builtins = vec![(
            "check_agent_process",
            Builtin::new(
                Verb::Get,
                "liveness probe: answers {} while the agent process runs",
                json!({"type": "object", "maxProperties": 0}),
                |_: Params| async { Ok(json!({})) },
            ),
        )];
        let version = format!("sha256:{}", &digest(&bytes)[..16]);
        let dispatcher = Arc::new(
            Dispatcher::new(&name, &version, guest.clone(), builtins)
                .with_context(|| format!("component {name} cannot be served"))?,
        );
        tracing::info!(
            component = %name,
            methods = dispatcher.methods().iter().count(),
            pooling = runtime.pooling(),
            policy = ?config.wasm.policy,
            "agent component loaded"
        );
        run_hook(&guest, "on-startup").await?;
        Ok(Self { dispatcher, guest })
    }
}

/// Runs a lifecycle hook if the component exports it; an error value fails the hook.
pub async fn run_hook(guest: &Guest, hook: &str) -> Result<()> {
    let Some(func) = guest.find(LIFECYCLE, hook) else {
        return Ok(());
    };
    let results = guest
        .call(&func, &[])
        .await
        .with_context(|| format!("{hook} of {} failed", guest.name()))?;
    if let Some(Val::Result(Err(payload))) = results.first() {
        let message = match payload.as_deref() {
            Some(Val::String(s)) => s.clone(),
            _ => "no reason given".into(),
        };
        bail!("{hook} of {} failed: {message}", guest.name());
    }
    Ok(())
}

/// Runs the agent until SIGINT or SIGTERM. Prints `paasm agent listening on http://ADDR` (or
/// `https://`) on stdout once the port is open.
pub async fn run(config: AgentConfig, options: AgentOptions) -> Result<()> {
    let tls = options
        .tls
        .as_ref()
        .map(server_config)
        .transpose()
        .context("cannot set up TLS")?;
    let addr = crate::rpc::listen_addr(&options.listen).await?;
    let agent = Agent::load(config, &options).await?;
    let shutdown = shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let scheme = if tls.is_some() { "https" } else { "http" };
    tracing::info!(%local, scheme, threads = ?options.threads, "agent listening");
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "paasm agent listening on {scheme}://{local}")?;
        stdout.flush()?;
    }
    let dispatcher = agent.dispatcher.clone();
    crate::rpc::serve(listener, dispatcher, tls, options.threads, shutdown).await;
    tracing::info!("agent stopping");
    if let Err(e) = run_hook(&agent.guest, "on-shutdown").await {
        tracing::warn!("{e:#}");
    }
    Ok(())
}

/// Watches for SIGINT and SIGTERM from the moment it is called (not from the first poll), so
/// a signal that arrives right after a server announces itself is never lost. The returned
/// future completes on the first of them.
pub fn shutdown_signal() -> Result<impl Future<Output = ()> + Send + 'static> {
    use tokio::signal::unix::{SignalKind, signal};
    let mut term = signal(SignalKind::terminate()).context("cannot watch SIGTERM")?;
    let mut int = signal(SignalKind::interrupt()).context("cannot watch SIGINT")?;
    Ok(async move {
        tokio::select! {
            _ = term.recv() => {}
            _ = int.recv() => {}
        }
    })
}
