//! paasm: a WebAssembly-component plugin host for a cloud control plane.
//!
//! The host supplies everything common (the JSON-RPC server, configuration, persistence,
//! logging, limits); the logic of every service is a sandboxed component. See ARCHITECTURE.md
//! for the map; in short:
//!
//! - [`config`]: the seed's INI configuration files.
//! - [`engine`]: wasmtime, the component cache, stores, limits; the only user of `bindgen!`.
//! - [`frontend`]: users, credits, the catalogue, the dashboard; starts managers.
//! - [`iaas`]: contextualization of the nodes a service runs on.
//! - [`oci`]: packages in OCI registries: push, pull, signatures, the trust policy.
//! - [`platform`]: the host side of the `paasm:platform` imports.
//! - [`rpc`]: the HTTP server, the ConPaaS and JSON-RPC 2.0 dialects, typed methods from WIT.
//! - [`service`]: the roles a node runs (agent now; manager next).

pub mod cli;
pub mod config;
pub mod engine;
pub mod frontend;
pub mod iaas;
pub mod oci;
pub mod platform;
pub mod resources;
pub mod rpc;
pub mod service;
