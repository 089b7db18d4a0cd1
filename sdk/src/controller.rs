//! A manager's nodes on its clouds, through `paasm:platform/controller` (the original's
//! `Controller`).
//!
//! Manager only: an agent's world does not offer this import. Nodes created here belong to the
//! service like the ones the host's `add_nodes` creates: [`list_nodes`] lists them, they are
//! kept across manager restarts and deleted at shutdown.
//!
//! ```no_run
//! use paasm_sdk::controller;
//!
//! fn add_backend() -> Result<(), String> {
//!     if controller::service_state() != "RUNNING" {
//!         return Err("ERROR: Wrong state to add_backend".to_owned());
//!     }
//!     let nodes = controller::create_nodes(1, "backend", None, &[("STRING", "backend")])?;
//!     for node in &nodes {
//!         paasm_sdk::info!("node {} is up at {}", node.id, node.ip);
//!     }
//!     Ok(())
//! }
//! ```

use crate::bindings::paasm::platform::controller as host;

pub use crate::Node;

/// Creates `count` nodes with `role` on `cloud` (`None`: the default cloud, the first of
/// [`list_clouds`]) and returns them once every new node's agent answers.
///
/// `context` adds `$NAME` replacements for the new nodes' configuration on top of the
/// manager's own and the service's [`agent_context`](crate::Lifecycle::agent_context). Either
/// all the nodes start or none is left behind; the error says what happened to each failed
/// node.
pub fn create_nodes(
    count: u32,
    role: &str,
    cloud: Option<&str>,
    context: &[(&str, &str)],
) -> Result<Vec<Node>, String> {
    let context: Vec<(String, String)> = context
        .iter()
        .map(|&(name, value)| (name.to_owned(), value.to_owned()))
        .collect();
    host::create_nodes(count, role, cloud, &context)
}

/// Deletes the nodes with these ids (`Node::id`); every id must belong to the service.
///
/// Takes `&[String]` and `&[&str]` alike.
pub fn delete_nodes<S: AsRef<str>>(ids: &[S]) -> Result<(), String> {
    let ids: Vec<String> = ids.iter().map(|id| id.as_ref().to_owned()).collect();
    host::delete_nodes(&ids)
}

/// The service's nodes, oldest first.
pub fn list_nodes() -> Vec<Node> {
    host::list_nodes()
}

/// The names of the clouds the manager may create nodes on, the default first.
pub fn list_clouds() -> Vec<String> {
    host::list_clouds()
}

/// The service's lifecycle state as `get_service_info` reports it: `INIT`, `PROLOGUE`,
/// `RUNNING`, `ADAPTING`, `EPILOGUE`, `STOPPED` or `ERROR`.
pub fn service_state() -> String {
    host::service_state()
}
