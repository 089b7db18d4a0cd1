//! A loaded component and the way every call into it runs.
//!
//! A [`Guest`] holds the compiled component pre-linked into an `InstancePre`, the export
//! indices resolved once at load, and its call limits. [`Guest::call`] gives each call its own
//! store and instance (or, under [`InstancePolicy::Reuse`], a warm one from a small pool), arms
//! the deadline and the memory cap, runs the export, commits the call's state writes only when
//! it returned normally, and turns every failure into a [`GuestError`] that carries what the
//! guest printed on stderr. A failed instance is never used again.

use std::fmt;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use wasmtime::component::types::{ComponentFunc, ComponentItem};
use wasmtime::component::{Component, ComponentExportIndex, Instance, InstancePre, Val};
use wasmtime::{Engine, Store, StoreContextMut, Trap, UpdateDeadline};

use super::store::StoreState;
use super::{CallLimits, InstancePolicy, Runtime};
use crate::platform::{PlatformCtx, PlatformHost, PlatformView};

/// How many warm instances a reusing guest keeps at most.
const MAX_WARM: usize = 256;

/// Why a call into a guest failed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum GuestErrorKind {
    /// The guest trapped or panicked.
    Trap,
    /// The call ran past its deadline and was interrupted.
    Timeout,
    /// The guest tried to grow past its memory cap.
    Memory,
    /// The host could not set the call up (for example, every instance slot is busy).
    Host,
}

/// A failed call into a guest, with what the guest printed on stderr.
#[derive(Debug, Clone)]
pub struct GuestError {
    pub kind: GuestErrorKind,
    /// What happened, in the host's words.
    pub message: String,
    /// The tail of the guest's stderr during the call (a panic message ends up here).
    pub stderr: String,
}

impl fmt::Display for GuestError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.message)?;
        let stderr = self.stderr.trim();
        if !stderr.is_empty() {
            write!(f, "; guest stderr: {stderr}")?;
        }
        Ok(())
    }
}

impl std::error::Error for GuestError {}

/// One function exported by a guest, found by walking the component's type.
#[derive(Clone)]
pub struct ExportedFunc {
    /// The exporting interface's full name (`pkg:name/iface@1.0.0`), or `None` for a function
    /// exported by the world itself.
    pub interface: Option<String>,
    /// The function's kebab-case name.
    pub name: String,
    /// Parameter names and types, result types.
    pub ty: ComponentFunc,
    /// The pre-resolved index used to find the function in every new instance.
    pub index: ComponentExportIndex,
}

struct Warm {
    store: Store<StoreState>,
    instance: Instance,
    calls: u32,
}

/// A loaded, pre-linked component ready to be called.
pub struct Guest {
    name: String,
    runtime: Runtime,
    component: Component,
    pre: InstancePre<StoreState>,
    host: Arc<PlatformHost>,
    limits: CallLimits,
    policy: InstancePolicy,
    warm: Mutex<Vec<Warm>>,
}

impl Guest {
    pub(super) fn new(
        name: String,
        runtime: Runtime,
        component: Component,
        pre: InstancePre<StoreState>,
        host: Arc<PlatformHost>,
        limits: CallLimits,
        policy: InstancePolicy,
    ) -> Self {
        Self {
            name,
            runtime,
            component,
            pre,
            host,
            limits,
            policy,
            warm: Mutex::new(Vec::new()),
        }
    }

    /// The name the guest is known by in logs and errors.
    pub fn name(&self) -> &str {
        &self.name
    }

    /// The limits every call gets.
    pub fn limits(&self) -> CallLimits {
        self.limits
    }

    /// The instance policy.
    pub fn policy(&self) -> InstancePolicy {
        self.policy
    }

    /// Every function the component exports, directly or through an exported interface.
    pub fn exports(&self) -> Vec<ExportedFunc> {
        exported_funcs(self.runtime.engine(), &self.component)
    }

    /// Calls `func` with `params`, returning its results.
    pub async fn call(&self, func: &ExportedFunc, params: &[Val]) -> Result<Vec<Val>, GuestError> {
        let result_count = func.ty.results().len();
        let deadline = Instant::now() + self.limits.timeout;
        let warm = match self.policy {
            InstancePolicy::Fresh => None,
            InstancePolicy::Reuse { .. } => self.take_warm(),
        };
        let (mut store, instance, calls) = match warm {
            Some(mut w) => {
                w.store.data_mut().begin_call(deadline);
                w.store.set_epoch_deadline(1);
                (w.store, w.instance, w.calls)
            }
            None => {
                let mut store = self.new_store(deadline);
                let instance = match self.pre.instantiate_async(&mut store).await {
                    Ok(instance) => instance,
                    Err(e) => return Err(self.failure(&mut store, e, "instantiation")),
                };
                (store, instance, 0)
            }
        };
        let outcome = self
            .run(&mut store, &instance, func, params, result_count)
            .await;
        let (stdout, stderr) = store.data_mut().take_output();
        log_output(&self.name, &stdout, &stderr);
        match outcome {
            Ok(results) => {
                if let Err(e) = store.data_mut().platform().commit() {
                    return Err(GuestError {
                        kind: GuestErrorKind::Host,
                        message: format!("cannot save the state written by {}: {e:#}", self.name),
                        stderr,
                    });
                }
                if let InstancePolicy::Reuse { max_calls } = self.policy
                    && calls + 1 < max_calls
                {
                    self.put_warm(Warm {
                        store,
                        instance,
                        calls: calls + 1,
                    });
                }
                Ok(results)
            }
            Err(e) => {
                let mut error = self.describe(&mut store, e);
                error.stderr = stderr;
                tracing::warn!(component = %self.name, function = %func.name, "call failed: {error}");
                Err(error)
            }
        }
    }

    /// A fresh store and instance with this guest's limits, for callers that use typed
    /// bindings rather than [`Guest::call`]'s dynamic values (resource providers); hand the
    /// outcome to [`Guest::finish_fresh`].
    pub(crate) async fn instantiate_fresh(
        &self,
    ) -> Result<(Store<StoreState>, Instance), GuestError> {
        let deadline = Instant::now() + self.limits.timeout;
        let mut store = self.new_store(deadline);
        match self.pre.instantiate_async(&mut store).await {
            Ok(instance) => Ok((store, instance)),
            Err(e) => Err(self.failure(&mut store, e, "instantiation")),
        }
    }

    /// Ends a call made on a store from [`Guest::instantiate_fresh`]: its state writes commit
    /// only when it succeeded; a failure is described as for [`Guest::call`], with `what`
    /// naming the call.
    pub(crate) fn finish_fresh<R>(
        &self,
        store: &mut Store<StoreState>,
        what: &str,
        outcome: wasmtime::Result<R>,
    ) -> Result<R, GuestError> {
        let (stdout, stderr) = store.data_mut().take_output();
        log_output(&self.name, &stdout, &stderr);
        match outcome {
            Ok(value) => {
                if let Err(e) = store.data_mut().platform().commit() {
                    return Err(GuestError {
                        kind: GuestErrorKind::Host,
                        message: format!("cannot save the state written by {}: {e:#}", self.name),
                        stderr,
                    });
                }
                Ok(value)
            }
            Err(e) => {
                let mut error = self.describe(store, e);
                error.stderr = stderr;
                tracing::warn!(component = %self.name, call = what, "call failed: {error}");
                Err(error)
            }
        }
    }

    /// The pre-linked component, for typed bindings.
    pub(crate) fn instance_pre(&self) -> &InstancePre<StoreState> {
        &self.pre
    }

    /// Finds a function by interface (`pkg:ns/iface`, any version) and name, if the component
    /// exports it (used for the lifecycle hooks, which are optional).
    pub fn find(&self, interface: &str, name: &str) -> Option<ExportedFunc> {
        self.exports().into_iter().find(|f| {
            f.name == name
                && f.interface
                    .as_deref()
                    .is_some_and(|i| interface_matches(i, interface))
        })
    }

    async fn run(
        &self,
        store: &mut Store<StoreState>,
        instance: &Instance,
        func: &ExportedFunc,
        params: &[Val],
        result_count: usize,
    ) -> wasmtime::Result<Vec<Val>> {
        let f = instance.get_func(&mut *store, func.index).ok_or_else(|| {
            wasmtime::format_err!("export {} not found in the instance", func.name)
        })?;
        let mut results = vec![Val::Bool(false); result_count];
        f.call_async(&mut *store, params, &mut results).await?;
        Ok(results)
    }

    fn new_store(&self, deadline: Instant) -> Store<StoreState> {
        let platform = PlatformCtx::new(self.host.clone());
        let state = StoreState::new(platform, self.limits.memory, deadline);
        let mut store = Store::new(self.runtime.engine(), state);
        store.limiter(|state| &mut state.limiter);
        store.set_epoch_deadline(1);
        store.epoch_deadline_callback(epoch_callback);
        store
    }

    fn take_warm(&self) -> Option<Warm> {
        self.warm.lock().unwrap_or_else(|e| e.into_inner()).pop()
    }

    fn put_warm(&self, warm: Warm) {
        let mut pool = self.warm.lock().unwrap_or_else(|e| e.into_inner());
        if pool.len() < MAX_WARM {
            pool.push(warm);
        }
    }

    fn failure(
        &self,
        store: &mut Store<StoreState>,
        e: wasmtime::Error,
        phase: &str,
    ) -> GuestError {
        let (stdout, stderr) = store.data_mut().take_output();
        log_output(&self.name, &stdout, &stderr);
        let mut error = self.describe(store, e);
        error.message = format!("{phase} of {} failed: {}", self.name, error.message);
        error.stderr = stderr;
        error
    }

    fn describe(&self, store: &mut Store<StoreState>, e: wasmtime::Error) -> GuestError {
        let memory_exceeded = store.data().limiter.exceeded;
        let (kind, message) = match e.downcast_ref::<Trap>() {
            Some(Trap::Interrupt) => (
                GuestErrorKind::Timeout,
                format!(
                    "{} exceeded its deadline of {} and was stopped",
                    self.name,
                    format_duration(self.limits.timeout)
                ),
            ),
            _ if memory_exceeded => (
                GuestErrorKind::Memory,
                format!(
                    "{} exceeded its memory limit of {} MiB ({})",
                    self.name,
                    self.limits.memory >> 20,
                    root_message(&e)
                ),
            ),
            Some(trap) => (
                GuestErrorKind::Trap,
                format!("{} trapped: {trap}", self.name),
            ),
            None => (
                GuestErrorKind::Trap,
                format!("{} failed: {}", self.name, root_message(&e)),
            ),
        };
        GuestError {
            kind,
            message,
            stderr: String::new(),
        }
    }
}

/// Every function `component` exports, directly or through an exported interface, with the
/// index that finds it in any instance of the component.
pub fn exported_funcs(engine: &Engine, component: &Component) -> Vec<ExportedFunc> {
    let ty = component.component_type();
    let mut funcs = Vec::new();
    for (export_name, item) in ty.exports(engine) {
        match item.ty {
            ComponentItem::ComponentFunc(func) => {
                if let Some(index) = component.get_export_index(None, export_name) {
                    funcs.push(ExportedFunc {
                        interface: None,
                        name: export_name.to_string(),
                        ty: func,
                        index,
                    });
                }
            }
            ComponentItem::ComponentInstance(instance) => {
                let Some(instance_index) = component.get_export_index(None, export_name) else {
                    continue;
                };
                for (func_name, item) in instance.exports(engine) {
                    let ComponentItem::ComponentFunc(func) = item.ty else {
                        continue;
                    };
                    if let Some(index) =
                        component.get_export_index(Some(&instance_index), func_name)
                    {
                        funcs.push(ExportedFunc {
                            interface: Some(export_name.to_string()),
                            name: func_name.to_string(),
                            ty: func,
                            index,
                        });
                    }
                }
            }
            _ => {}
        }
    }
    funcs
}

/// Whether an exported interface name (`pkg:ns/iface@1.0.0`) is `iface_path` (`pkg:ns/iface`)
/// at any version.
fn interface_matches(export: &str, iface_path: &str) -> bool {
    export.split('@').next() == Some(iface_path)
}

/// The innermost cause of an error, without the wasm backtrace wasmtime appends.
fn root_message(e: &wasmtime::Error) -> String {
    let text = format!("{:#}", e);
    text.lines().next().unwrap_or_default().to_string()
}

fn format_duration(d: Duration) -> String {
    if d.subsec_millis() == 0 {
        format!("{}s", d.as_secs())
    } else {
        format!("{}ms", d.as_millis())
    }
}

fn epoch_callback(ctx: StoreContextMut<'_, StoreState>) -> wasmtime::Result<UpdateDeadline> {
    if Instant::now() >= ctx.data().deadline() {
        Ok(UpdateDeadline::Interrupt)
    } else {
        Ok(UpdateDeadline::Yield(1))
    }
}

fn log_output(name: &str, stdout: &str, stderr: &str) {
    for line in stdout.lines().filter(|l| !l.is_empty()) {
        tracing::info!(target: "guest", component = %name, stream = "stdout", "{line}");
    }
    for line in stderr.lines().filter(|l| !l.is_empty()) {
        tracing::info!(target: "guest", component = %name, stream = "stderr", "{line}");
    }
}
