//! A manager's calls to its agents, through `paasm:platform/agents`.
//!
//! Manager only: an agent's world does not offer this import. A call names a node by its id
//! (`Node::id`, from [`crate::controller::list_nodes`] or a lifecycle hook), a [`Verb`] (an
//! agent's `queries` are GET methods, its `commands` POST methods) and a method in snake_case,
//! as the agent serves it. Parameters and results are JSON values; the host makes the call in
//! the original wire protocol.
//!
//! ```no_run
//! use paasm_sdk::agents::{self, Verb};
//! use paasm_sdk::serde_json::json;
//!
//! fn greetings(ids: &[String]) -> Result<Vec<String>, String> {
//!     let mut greetings = Vec::new();
//!     for reply in agents::call_each(ids, Verb::Get, "get_helloworld", &json!({})) {
//!         // An agent's `get-helloworld` answers `{"result": "<greeting>"}`.
//!         let reply = reply?;
//!         greetings.push(reply["result"].as_str().unwrap_or_default().to_owned());
//!     }
//!     Ok(greetings)
//! }
//! ```

use serde_json::Value;

use crate::bindings::paasm::platform::agents as host;

/// The namespace of an agent method: `Get` for its `queries`, `Post` for its `commands`.
pub use crate::bindings::paasm::platform::agents::Verb;

/// Calls `method` on the agent of node `node` with `params`, a JSON object (`json!({})` for
/// none), and returns the agent's result.
///
/// The error is the agent's error, or why the agent could not be reached or its reply could
/// not be read.
pub fn call(node: &str, verb: Verb, method: &str, params: &Value) -> Result<Value, String> {
    let reply = host::call(node, verb, method, &params.to_string())?;
    parse_reply(node, method, &reply)
}

/// The same call on several nodes at once (the host runs them concurrently); the results come
/// back in the order of `nodes`.
///
/// Takes `&[String]` and `&[&str]` alike.
pub fn call_each<S: AsRef<str>>(
    nodes: &[S],
    verb: Verb,
    method: &str,
    params: &Value,
) -> Vec<Result<Value, String>> {
    if nodes.is_empty() {
        return Vec::new();
    }
    let ids: Vec<String> = nodes.iter().map(|id| id.as_ref().to_owned()).collect();
    let replies = host::call_each(&ids, verb, method, &params.to_string());
    ids.iter()
        .zip(replies)
        .map(|(node, reply)| parse_reply(node, method, &reply?))
        .collect()
}

/// The JSON value of the reply text of `method` from `node`.
fn parse_reply(node: &str, method: &str, reply: &str) -> Result<Value, String> {
    serde_json::from_str(reply)
        .map_err(|err| format!("the reply of {method} from node {node} is not JSON: {err}"))
}
