//! The host side of the `paasm:platform` imports.
//!
//! [`PlatformHost`] is what every instance of one service shares (its name, its merged
//! configuration, its state store); [`PlatformCtx`] is what one store holds (that shared part
//! plus the state writes of the call in progress). The engine reaches a store's context through
//! [`PlatformView`] and never the other way round, so this module knows nothing of wasmtime's
//! store layout. One file per WIT interface.
//!
//! The manager-only interfaces (`controller`, `agents`) reach the manager through the
//! [`NodeControl`] trait, which the manager role implements; for any other guest they trap
//! with a message saying they are for managers.

mod agents;
mod config;
pub mod controller;
mod log;
pub mod parameters;
mod state;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Duration;

pub use controller::{NodeControl, NodeInfo};
pub use parameters::{ParamKey, Parameters, ValueKind};
pub use state::{StateError, StateStore};

use crate::config::IniConfig;

/// What every instance of one service shares.
pub struct PlatformHost {
    /// The name the service is known by in logs.
    pub name: String,
    /// The merged configuration.
    pub config: Arc<IniConfig>,
    /// The persistent key/value store of this service on this node.
    pub state: StateStore,
    /// The manager's nodes and agents; `None` for every guest but a manager.
    pub nodes: Option<Arc<dyn NodeControl>>,
    /// Directories the operator grants this guest, read-write, each seen by the guest at its
    /// own host path (so what a provider writes into configuration files is the real path).
    /// Empty for services: they have no filesystem at all.
    pub grants: Vec<std::path::PathBuf>,
}

impl PlatformHost {
    /// The shared part of a guest that is not a manager.
    pub fn new(name: impl Into<String>, config: Arc<IniConfig>, state: StateStore) -> Self {
        Self {
            name: name.into(),
            config,
            state,
            nodes: None,
            grants: Vec::new(),
        }
    }
}

/// The platform context of one store.
pub struct PlatformCtx {
    host: Arc<PlatformHost>,
    /// State writes of the call in progress: `None` is a delete. Applied by [`Self::commit`].
    pending: BTreeMap<String, Option<Vec<u8>>>,
    /// Time the call in progress spent waiting in async host calls (nodes booting, agents
    /// answering); it does not count against the guest's deadline.
    waited: Duration,
    /// The host resources this store hands out (parameter collections).
    table: wasmtime::component::ResourceTable,
    /// Sensitive values of the collections handed out: masked in the guest's log records and
    /// output.
    secrets: Vec<String>,
}

impl PlatformCtx {
    /// A context for a new store of the service `host`.
    pub fn new(host: Arc<PlatformHost>) -> Self {
        Self {
            host,
            pending: BTreeMap::new(),
            waited: Duration::ZERO,
            table: wasmtime::component::ResourceTable::new(),
            secrets: Vec::new(),
        }
    }

    /// `text` with the sensitive values this guest was given masked.
    pub fn mask(&self, text: String) -> String {
        crate::resources::params::mask_secrets(text, &self.secrets)
    }

    /// Forgets anything left from an earlier call on the same store.
    pub fn begin_call(&mut self) {
        self.pending.clear();
        self.waited = Duration::ZERO;
    }

    /// How long the call in progress has waited in async host calls.
    pub fn waited(&self) -> Duration {
        self.waited
    }

    /// The directories granted to this guest.
    pub fn grants(&self) -> &[std::path::PathBuf] {
        &self.host.grants
    }

    /// The manager's nodes, or a trap for a guest that is not a manager.
    fn nodes(&self, interface: &str) -> wasmtime::Result<Arc<dyn NodeControl>> {
        self.host.nodes.clone().ok_or_else(|| {
            wasmtime::format_err!(
                "paasm:platform/{interface} is only available to managers, and {} is not one",
                self.host.name
            )
        })
    }

    /// Makes the call's state writes durable and visible, all at once.
    pub fn commit(&mut self) -> Result<(), StateError> {
        if self.pending.is_empty() {
            return Ok(());
        }
        let writes = std::mem::take(&mut self.pending);
        self.host.state.apply(writes)
    }
}

/// Access to the platform context from whatever holds it (the engine's store data).
pub trait PlatformView {
    /// The platform context of this store.
    fn platform(&mut self) -> &mut PlatformCtx;
}
