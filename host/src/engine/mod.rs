//! The wasmtime engine and everything that knows wasmtime's store layout.
//!
//! [`Runtime`] owns one `wasmtime::Engine` per process (pooling allocator, epoch interruption,
//! the linker with WASI and the `paasm:platform` imports) and a background thread that ticks
//! the epoch. [`Runtime::load`] turns component bytes into a [`Guest`]: compiled (or loaded from
//! the [`ComponentCache`]), pre-linked into an `InstancePre`, ready to be called with a fresh
//! store and instance per call. This module is the only one that calls `bindgen!` and the only
//! one that touches `Store`; `platform/` reaches its state through [`PlatformView`].
//!
//! [`PlatformView`]: crate::platform::PlatformView

mod bindings;
mod cache;
mod guest;
mod output;
pub mod provider;
mod store;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use anyhow::{Context, Result};
use wasmtime::component::{HasSelf, Linker};
use wasmtime::{Config, Enabled, Engine, InstanceAllocationStrategy, PoolingAllocationConfig};

pub use bindings::paasm::platform as platform_bindings;
pub use cache::{ComponentCache, digest};
pub use guest::{ExportedFunc, Guest, GuestError, GuestErrorKind, exported_funcs};
pub(crate) use store::StoreState;

use crate::platform::{PlatformCtx, PlatformView};

/// How often the epoch advances; the granularity of call deadlines and of yielding.
const EPOCH_TICK: Duration = Duration::from_millis(5);

/// How a service's calls get their instances.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InstancePolicy {
    /// A fresh store and instance for every call (the default): nothing survives a call.
    Fresh,
    /// Warm instances reused for at most `max_calls` calls each, discarded after any trap or
    /// timeout. Correctness must never depend on it: state belongs in the `state` store.
    Reuse { max_calls: u32 },
}

impl InstancePolicy {
    /// Parses the `INSTANCES` setting (`fresh` or `reuse`) with its `REUSE_MAX_CALLS` bound.
    pub fn parse(value: &str, max_calls: u32) -> Result<Self, String> {
        match value.trim().to_ascii_lowercase().as_str() {
            "fresh" => Ok(Self::Fresh),
            "reuse" => Ok(Self::Reuse { max_calls }),
            other => Err(format!("expected \"fresh\" or \"reuse\", found {other:?}")),
        }
    }
}

/// Limits applied to every call into a guest.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CallLimits {
    /// Wall-clock time a call may take, instantiation included.
    pub timeout: Duration,
    /// Bytes of linear memory the whole guest may hold (all its memories together).
    pub memory: usize,
}

impl Default for CallLimits {
    fn default() -> Self {
        Self {
            timeout: Duration::from_secs(10),
            memory: 64 << 20,
        }
    }
}

/// Settings for a [`Runtime`].
#[derive(Debug, Clone)]
pub struct RuntimeOptions {
    /// Where precompiled components are kept; `None` disables the cache.
    pub cache_dir: Option<PathBuf>,
    /// The largest memory cap any guest of this runtime will get (sizes the pooling allocator).
    pub max_memory: usize,
    /// How many instances may be alive at once (sizes the pooling allocator).
    pub max_instances: u32,
}

impl Default for RuntimeOptions {
    fn default() -> Self {
        Self {
            cache_dir: default_cache_dir(),
            max_memory: CallLimits::default().memory,
            max_instances: 1000,
        }
    }
}

/// The default precompiled-component cache: `$PAASM_CACHE_DIR`, else `$XDG_CACHE_HOME/paasm`,
/// else `~/.cache/paasm`.
pub fn default_cache_dir() -> Option<PathBuf> {
    if let Some(dir) = std::env::var_os("PAASM_CACHE_DIR") {
        return Some(PathBuf::from(dir));
    }
    if let Some(dir) = std::env::var_os("XDG_CACHE_HOME") {
        return Some(PathBuf::from(dir).join("paasm"));
    }
    std::env::var_os("HOME").map(|home| PathBuf::from(home).join(".cache").join("paasm"))
}

struct RuntimeInner {
    engine: Engine,
    linker: Linker<StoreState>,
    cache: Option<ComponentCache>,
    pooling: bool,
    stop_ticker: Arc<AtomicBool>,
}

impl Drop for RuntimeInner {
    fn drop(&mut self) {
        self.stop_ticker.store(true, Ordering::Relaxed);
    }
}

/// The process-wide wasmtime engine, linker and component cache. Cheap to clone.
#[derive(Clone)]
pub struct Runtime {
    inner: Arc<RuntimeInner>,
}

impl Runtime {
    /// Builds the engine, preferring the pooling allocator and falling back to on-demand
    /// allocation where the address space is too small for the pool.
    pub fn new(options: &RuntimeOptions) -> Result<Self> {
        let (engine, pooling) = match Engine::new(&engine_config(options, true)) {
            Ok(engine) => (engine, true),
            Err(e) => {
                tracing::warn!(
                    "pooling allocator unavailable ({e:#}); falling back to on-demand allocation"
                );
                let engine = Engine::new(&engine_config(options, false))
                    .map_err(anyhow::Error::from)
                    .context("failed to create the wasmtime engine")?;
                (engine, false)
            }
        };
        let mut linker = Linker::<StoreState>::new(&engine);
        wasmtime_wasi::p2::add_to_linker_async(&mut linker)
            .map_err(anyhow::Error::from)
            .context("failed to link WASI")?;
        add_platform_to_linker(&mut linker)?;
        let cache = options
            .cache_dir
            .clone()
            .map(|dir| ComponentCache::new(dir, &engine));
        let stop_ticker = Arc::new(AtomicBool::new(false));
        spawn_epoch_ticker(engine.clone(), stop_ticker.clone());
        Ok(Self {
            inner: Arc::new(RuntimeInner {
                engine,
                linker,
                cache,
                pooling,
                stop_ticker,
            }),
        })
    }

    /// The wasmtime engine.
    pub fn engine(&self) -> &Engine {
        &self.inner.engine
    }

    /// Whether the pooling allocator is in use.
    pub fn pooling(&self) -> bool {
        self.inner.pooling
    }

    /// Compiles (or loads precompiled) and pre-links a component.
    ///
    /// Fails with a clear message when the bytes are not a component or when the component
    /// imports something paasm does not provide.
    pub fn load(
        &self,
        name: &str,
        bytes: &[u8],
        host: Arc<crate::platform::PlatformHost>,
        limits: CallLimits,
        policy: InstancePolicy,
    ) -> Result<Guest> {
        if !wasmparser_is_component(bytes) {
            anyhow::bail!(
                "{name} is not a WebAssembly component (a core module or another file); build it for wasm32-wasip2 or wrap it with `wasm-tools component new`"
            );
        }
        let component = match &self.inner.cache {
            Some(cache) => cache.load_or_compile(&self.inner.engine, bytes, name)?,
            None => wasmtime::component::Component::new(&self.inner.engine, bytes)
                .map_err(anyhow::Error::from)
                .with_context(|| format!("failed to compile component {name}"))?,
        };
        let pre = self
            .inner
            .linker
            .instantiate_pre(&component)
            .map_err(anyhow::Error::from)
            .with_context(|| format!("component {name} cannot be linked"))?;
        Ok(Guest::new(
            name.to_string(),
            self.clone(),
            component,
            pre,
            host,
            limits,
            policy,
        ))
    }
}

/// The component binary starts with the wasm magic and the component layer/version.
fn wasmparser_is_component(bytes: &[u8]) -> bool {
    bytes.len() >= 8 && bytes[..4] == *b"\0asm" && bytes[4..8] == [0x0d, 0x00, 0x01, 0x00]
}

fn engine_config(options: &RuntimeOptions, pooling: bool) -> Config {
    let mut config = Config::new();
    config.wasm_component_model(true);
    config.epoch_interruption(true);
    config.wasm_backtrace_details(wasmtime::WasmBacktraceDetails::Disable);
    // Guests use the synchronous component ABI (WASI 0.2); without the component model's
    // concurrency machinery every store is cheaper to create, call into and drop.
    config.concurrency_support(false);
    if pooling {
        let mut pool = PoolingAllocationConfig::default();
        let instances = options.max_instances;
        pool.total_component_instances(instances)
            .total_core_instances(instances.saturating_mul(4))
            .total_memories(instances.saturating_mul(2))
            .total_tables(instances.saturating_mul(4))
            .total_stacks(instances)
            .max_memories_per_component(8)
            .max_tables_per_component(16)
            .max_core_instances_per_component(64)
            .max_component_instance_size(1 << 20)
            .max_core_instance_size(4 << 20)
            .max_memory_size(options.max_memory)
            .linear_memory_keep_resident(2 << 20)
            .table_keep_resident(64 << 10)
            .pagemap_scan(Enabled::Auto);
        config.allocation_strategy(InstanceAllocationStrategy::Pooling(pool));
    }
    config
}

fn add_platform_to_linker(linker: &mut Linker<StoreState>) -> Result<()> {
    fn project(state: &mut StoreState) -> &mut PlatformCtx {
        state.platform()
    }
    bindings::AllImports::add_to_linker::<StoreState, HasSelf<PlatformCtx>>(linker, project)
        .map_err(anyhow::Error::from)
        .context("failed to link the paasm:platform imports")
}

fn spawn_epoch_ticker(engine: Engine, stop: Arc<AtomicBool>) {
    std::thread::Builder::new()
        .name("paasm-epoch".into())
        .spawn(move || {
            while !stop.load(Ordering::Relaxed) {
                std::thread::sleep(EPOCH_TICK);
                engine.increment_epoch();
            }
        })
        .expect("failed to spawn the epoch thread");
}
