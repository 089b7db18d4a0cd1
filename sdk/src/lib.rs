//! The Rust guest SDK for paasm: what a service component written in Rust depends on.
//!
//! It holds the generated bindings of the `paasm:service/agent` world (the platform imports
//! `log`, `config` and `state`, and the `paasm:service/lifecycle` export) plus idiomatic
//! wrappers around them:
//!
//! - [`log`](mod@log): `info!`, `warn!`, `error!`, `debug!` and `trace!` macros,
//! - [`config`]: typed access to the service's merged configuration,
//! - [`state`]: the persistent, per-call transactional key/value store,
//! - [`Lifecycle`]: the lifecycle hooks with defaults, exported with [`export_lifecycle!`].
//!
//! A guest generates bindings only for its own WIT package and maps the platform interfaces
//! onto [`bindings`] with `with`, so the import glue exists once. See `README.md` for a
//! complete guest.

pub mod bindings;
pub mod config;
pub mod lifecycle;
pub mod log;
pub mod state;

pub use lifecycle::{Lifecycle, Node};
