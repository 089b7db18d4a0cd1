//! The ConPaaS HelloWorld agent as a paasm component.
//!
//! It does what the original `HelloWorldAgent` does: `startup` moves it to RUNNING and
//! `get_helloworld` then answers the configured `[agent] STRING_TO_GENERATE`. On top of that,
//! `upload_greeting` replaces the greeting with an uploaded file. The agent's state lives in
//! the host's `state` store, since every call may run in a fresh instance.

use paasm_sdk::{config, info, state};

wit_bindgen::generate!({
    path: ["../../wit/platform", "../../wit/service", "wit"],
    world: "paasm-examples:helloworld/agent",
    // Reuse the SDK's bindings of the platform imports instead of generating them again.
    with: {
        "paasm:platform/types@0.1.0": paasm_sdk::bindings::paasm::platform::types,
        "paasm:platform/log@0.1.0": paasm_sdk::bindings::paasm::platform::log,
        "paasm:platform/config@0.1.0": paasm_sdk::bindings::paasm::platform::config,
        "paasm:platform/state@0.1.0": paasm_sdk::bindings::paasm::platform::state,
    },
});

use exports::paasm_examples::helloworld::{commands, queries, uploads};

/// State key holding the agent's state (`RUNNING` once started).
const STATE: &str = "state";
/// State key holding an uploaded greeting.
const GREETING: &str = "greeting";
const RUNNING: &str = "RUNNING";

struct Agent;

impl paasm_sdk::Lifecycle for Agent {
    fn on_startup() -> Result<(), String> {
        info!("helloworld agent loaded");
        Ok(())
    }
}

paasm_sdk::export_lifecycle!(Agent);

impl commands::Guest for Agent {
    fn startup() -> Result<(), String> {
        state::set_string(STATE, RUNNING);
        info!("Agent started up");
        Ok(())
    }
}

impl queries::Guest for Agent {
    fn get_helloworld() -> Result<queries::Hello, String> {
        if state::get_string(STATE).as_deref() != Some(RUNNING) {
            return Err("ERROR: Wrong state to get_helloworld".to_owned());
        }
        let greeting = match state::get_string(GREETING) {
            Some(greeting) => greeting,
            None => config::get("agent", "STRING_TO_GENERATE").ok_or_else(|| {
                "ERROR: Missing configuration variable \"STRING_TO_GENERATE\" in section \"agent\""
                    .to_owned()
            })?,
        };
        Ok(queries::Hello { result: greeting })
    }
}

impl uploads::Guest for Agent {
    fn upload_greeting(greeting: Vec<u8>) -> Result<uploads::UploadInfo, String> {
        let bytes = u32::try_from(greeting.len()).map_err(|_| "ERROR: greeting is too large")?;
        let text = String::from_utf8(greeting)
            .map_err(|_| "ERROR: greeting is not valid UTF-8".to_owned())?;
        let text = text.strip_suffix('\n').unwrap_or(&text);
        let text = text.strip_suffix('\r').unwrap_or(text);
        state::set_string(GREETING, text);
        info!("greeting replaced ({bytes} bytes)");
        Ok(uploads::UploadInfo { bytes })
    }
}

export!(Agent);
