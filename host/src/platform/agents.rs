//! `paasm:platform/agents`: a manager's calls to its agents.
//!
//! Parameters and results cross the boundary as JSON text; the manager role makes the call in
//! the original wire protocol. `call-each` runs its calls concurrently. Time spent waiting for
//! agents is not counted against the guest's call deadline.

use std::time::Instant;

use serde_json::{Map, Value};

use crate::engine::platform_bindings::agents::{Host, Verb};

use super::PlatformCtx;
use super::controller::verb;

/// The params text of a call as a JSON object.
fn object(params: &str) -> Result<Map<String, Value>, String> {
    let text = if params.trim().is_empty() {
        "{}"
    } else {
        params
    };
    match serde_json::from_str(text) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(other) => Err(format!(
            "invalid params: expected a JSON object, found {}",
            kind(&other)
        )),
        Err(e) => Err(format!("invalid params: not JSON ({e})")),
    }
}

fn kind(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "a boolean",
        Value::Number(_) => "a number",
        Value::String(_) => "a string",
        Value::Array(_) => "an array",
        Value::Object(_) => "an object",
    }
}

impl Host for PlatformCtx {
    async fn call(
        &mut self,
        node: String,
        v: Verb,
        method: String,
        params: String,
    ) -> wasmtime::Result<Result<String, String>> {
        let nodes = self.nodes("agents")?;
        let params = match object(&params) {
            Ok(params) => params,
            Err(e) => return Ok(Err(e)),
        };
        let started = Instant::now();
        let result = nodes.call_agent(node, verb(v), method, params).await;
        self.waited += started.elapsed();
        Ok(result.map(|value| value.to_string()))
    }

    async fn call_each(
        &mut self,
        ids: Vec<String>,
        v: Verb,
        method: String,
        params: String,
    ) -> wasmtime::Result<Vec<Result<String, String>>> {
        let nodes = self.nodes("agents")?;
        let params = match object(&params) {
            Ok(params) => params,
            Err(e) => return Ok(ids.iter().map(|_| Err(e.clone())).collect()),
        };
        let started = Instant::now();
        let calls = ids
            .into_iter()
            .map(|id| nodes.call_agent(id, verb(v), method.clone(), params.clone()));
        let results = futures_util::future::join_all(calls).await;
        self.waited += started.elapsed();
        Ok(results
            .into_iter()
            .map(|r| r.map(|value| value.to_string()))
            .collect())
    }
}
