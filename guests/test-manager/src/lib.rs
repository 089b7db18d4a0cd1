//! A test guest implementing a manager whose methods are each one call of the `controller`
//! or `agents` imports (create, delete and list nodes, list clouds, call an agent), so the
//! host's tests can check what a manager component can do with its nodes. Its lifecycle hooks
//! are the SDK's defaults: nothing happens to new nodes unless a method asks. It exports
//! `paasm:service/health`, asking the host to replace every node that failed two probes in a
//! row.

use paasm_sdk::agents::{self, Verb};
use paasm_sdk::controller;
use paasm_sdk::serde_json::Value;

wit_bindgen::generate!({
    path: ["../../wit/platform", "../../wit/service", "wit"],
    world: "paasm-tests:manager/manager",
    with: {
        "paasm:platform/types@0.1.0": paasm_sdk::bindings::paasm::platform::types,
        "paasm:platform/log@0.1.0": paasm_sdk::bindings::paasm::platform::log,
        "paasm:platform/config@0.1.0": paasm_sdk::bindings::paasm::platform::config,
        "paasm:platform/state@0.1.0": paasm_sdk::bindings::paasm::platform::state,
        "paasm:platform/controller@0.1.0": paasm_sdk::bindings::paasm::platform::controller,
        "paasm:platform/agents@0.1.0": paasm_sdk::bindings::paasm::platform::agents,
    },
});

use exports::paasm::service::health;
use exports::paasm_tests::manager::{commands, queries};

struct Manager;

impl paasm_sdk::Lifecycle for Manager {}

paasm_sdk::export_lifecycle!(Manager);

/// Probes in a row a node may fail before it is replaced.
const PATIENCE: u32 = 2;

impl health::Guest for Manager {
    fn on_nodes_unreachable(nodes: Vec<health::UnreachableNode>) -> Vec<String> {
        nodes
            .into_iter()
            .filter(|n| n.failed_probes >= PATIENCE)
            .map(|n| {
                paasm_sdk::warn!(
                    "replacing {} after {} failed probes: {}",
                    n.node.id,
                    n.failed_probes,
                    n.reason
                );
                n.node.id
            })
            .collect()
    }
}

impl queries::Guest for Manager {
    fn clouds() -> Vec<String> {
        controller::list_clouds()
    }

    fn nodes() -> Vec<String> {
        controller::list_nodes()
            .into_iter()
            .map(|node| node.id)
            .collect()
    }

    fn ask(node: String, method: String) -> Result<String, String> {
        agents::call(
            &node,
            Verb::Get,
            &method,
            &Value::Object(Default::default()),
        )
        .map(|reply| reply.to_string())
    }
}

impl commands::Guest for Manager {
    fn grow(count: u32, cloud: Option<String>, greeting: String) -> Result<Vec<String>, String> {
        let nodes = controller::create_nodes(
            count,
            "helloworld",
            cloud.as_deref(),
            &[("STRING", &greeting)],
        )?;
        Ok(nodes.into_iter().map(|node| node.id).collect())
    }

    fn shrink(ids: Vec<String>) -> Result<(), String> {
        controller::delete_nodes(&ids)
    }

    fn tell(node: String, method: String, params: String) -> Result<String, String> {
        let params: Value =
            paasm_sdk::serde_json::from_str(&params).map_err(|e| format!("params: {e}"))?;
        agents::call(&node, Verb::Post, &method, &params).map(|reply| reply.to_string())
    }
}

export!(Manager);
