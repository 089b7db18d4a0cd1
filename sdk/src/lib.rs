//! The Rust guest SDK for paasm: what a service component written in Rust depends on.
//!
//! It holds the generated bindings of the `paasm:service/manager` world (the platform imports
//! `log`, `config` and `state`, the manager-only imports `controller` and `agents`, and the
//! `paasm:service/lifecycle` export) plus idiomatic wrappers around them:
//!
//! - [`log`](mod@log): `info!`, `warn!`, `error!`, `debug!` and `trace!` macros,
//! - [`config`]: typed access to the service's merged configuration,
//! - [`state`]: the persistent, per-call transactional key/value store,
//! - [`controller`] (managers): create, delete and list the service's nodes,
//! - [`agents`] (managers): call the agents of those nodes with JSON parameters and results,
//! - [`Lifecycle`]: the lifecycle hooks with defaults, exported with [`export_lifecycle!`].
//!
//! The manager world is a superset of the agent world, so one SDK serves both roles: an agent
//! never calls `controller` or `agents`, and a component imports only what its code uses.
//!
//! A guest generates bindings only for its own WIT package and maps the platform interfaces
//! onto [`bindings`] with `with`, so the import glue exists once:
//!
//! ```ignore
//! with: {
//!     "paasm:platform/types@0.1.0": paasm_sdk::bindings::paasm::platform::types,
//!     "paasm:platform/log@0.1.0": paasm_sdk::bindings::paasm::platform::log,
//!     "paasm:platform/config@0.1.0": paasm_sdk::bindings::paasm::platform::config,
//!     "paasm:platform/state@0.1.0": paasm_sdk::bindings::paasm::platform::state,
//!     // Managers only: `with` rejects interfaces the guest's world does not have.
//!     "paasm:platform/controller@0.1.0": paasm_sdk::bindings::paasm::platform::controller,
//!     "paasm:platform/agents@0.1.0": paasm_sdk::bindings::paasm::platform::agents,
//! }
//! ```
//!
//! See `README.md` for a complete guest.

pub mod agents;
pub mod bindings;
pub mod config;
pub mod controller;
pub mod lifecycle;
pub mod log;
pub mod state;

pub use lifecycle::{Lifecycle, Node};

/// The `serde_json` the SDK uses for [`agents`] parameters and results, so a guest can write
/// `paasm_sdk::serde_json::json!({})` without a dependency of its own.
pub use serde_json;
