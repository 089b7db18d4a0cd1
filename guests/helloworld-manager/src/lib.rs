//! The ConPaaS HelloWorld manager as a paasm component.
//!
//! The host implements the standard manager lifecycle itself (the states, adding and removing
//! nodes, listing them); this component adds what the original `HelloWorldManager` does on top:
//!
//! - every new agent node is configured with `$STRING` = `helloworld` (`agent-context`),
//! - once the new nodes' agents answer, each one is started with its `startup` command
//!   (`on-nodes-added`),
//! - `get_helloworld` asks every node's agent for its greeting, logs what each answered and
//!   replies `{"helloworld": [node ids]}`,
//! - `upload_note` (an UPLOAD method) takes a file and logs its first line.
//!
//! The manager keeps nothing of its own: the nodes and the service state come from the host's
//! controller on every call.

use paasm_sdk::agents::{self, Verb};
use paasm_sdk::serde_json::{Value, json};
use paasm_sdk::{Node, controller, info};

wit_bindgen::generate!({
    path: ["../../wit/platform", "../../wit/service", "wit"],
    world: "paasm-examples:helloworld-manager/manager",
    // Reuse the SDK's bindings of the platform imports instead of generating them again.
    with: {
        "paasm:platform/types@0.1.0": paasm_sdk::bindings::paasm::platform::types,
        "paasm:platform/log@0.1.0": paasm_sdk::bindings::paasm::platform::log,
        "paasm:platform/config@0.1.0": paasm_sdk::bindings::paasm::platform::config,
        "paasm:platform/state@0.1.0": paasm_sdk::bindings::paasm::platform::state,
        "paasm:platform/controller@0.1.0": paasm_sdk::bindings::paasm::platform::controller,
        "paasm:platform/agents@0.1.0": paasm_sdk::bindings::paasm::platform::agents,
    },
});

use exports::paasm_examples::helloworld_manager::{queries, uploads};

const RUNNING: &str = "RUNNING";

struct Manager;

impl paasm_sdk::Lifecycle for Manager {
    fn on_startup() -> Result<(), String> {
        info!("Manager started up");
        Ok(())
    }

    /// `$STRING` = `helloworld` for every agent, as the original's `update_context` sets it.
    fn agent_context(_role: String, _cloud: String) -> Vec<(String, String)> {
        vec![("STRING".to_owned(), "helloworld".to_owned())]
    }

    /// Starts the agents of the new nodes, all at once.
    fn on_nodes_added(nodes: Vec<Node>) -> Result<(), String> {
        let ids: Vec<String> = nodes.into_iter().map(|node| node.id).collect();
        let replies = agents::call_each(&ids, Verb::Post, "startup", &json!({}));
        let mut failures = Vec::new();
        for (id, reply) in ids.iter().zip(replies) {
            match reply {
                Ok(_) => info!("Started the agent on {id}"),
                Err(err) => failures.push(format!("startup failed on {id}: {err}")),
            }
        }
        if failures.is_empty() {
            Ok(())
        } else {
            Err(failures.join("; "))
        }
    }
}

paasm_sdk::export_lifecycle!(Manager);

impl queries::Guest for Manager {
    fn get_helloworld() -> Result<queries::HelloworldReply, String> {
        if controller::service_state() != RUNNING {
            return Err("ERROR: Wrong state to get_helloworld".to_owned());
        }
        let ids: Vec<String> = controller::list_nodes()
            .into_iter()
            .map(|node| node.id)
            .collect();
        let replies = agents::call_each(&ids, Verb::Get, "get_helloworld", &json!({}));
        let mut failures = Vec::new();
        for (id, reply) in ids.iter().zip(replies) {
            match reply {
                Ok(reply) => info!("Received {} from {id}", greeting(&reply)),
                Err(err) => failures.push(format!("ERROR: get_helloworld failed on {id}: {err}")),
            }
        }
        if failures.is_empty() {
            Ok(queries::HelloworldReply { helloworld: ids })
        } else {
            Err(failures.join("; "))
        }
    }
}

/// The greeting in an agent's `get_helloworld` reply, `{"result": "<greeting>"}`; any other
/// reply as JSON text.
fn greeting(reply: &Value) -> String {
    match reply.get("result").and_then(Value::as_str) {
        Some(greeting) => greeting.to_owned(),
        None => reply.to_string(),
    }
}

export!(Manager);

impl uploads::Guest for Manager {
    fn upload_note(note: Vec<u8>) -> Result<uploads::NoteInfo, String> {
        let bytes = u32::try_from(note.len()).map_err(|_| "the note is too large".to_owned())?;
        let text = String::from_utf8_lossy(&note);
        let first_line = text.lines().next().unwrap_or_default().to_owned();
        info!("Received a note of {bytes} bytes: {first_line}");
        Ok(uploads::NoteInfo { bytes, first_line })
    }
}
