//! The agent conformance suite: the same cases, kept as data in `tests/conformance/agent/`, run
//! unchanged against the helloworld agent in every language it is written in (Rust, Python,
//! JavaScript, C, Go), each served by a real `paasm agent` and called over real HTTP in both
//! dialects (ConPaaS GET/POST/UPLOAD and JSON-RPC 2.0). Every reply must match the case, and
//! every agent's replies must equal the Rust agent's, step by step.
//!
//! A case file has a `name`, an optional `log` (lines the agent's log must contain after the
//! steps) and `[[step]]`s. A step names its method with one of `get` (a ConPaaS GET, as the
//! original client sends it, id 1), `post` (a ConPaaS POST), `jsonrpc` (a JSON-RPC 2.0 POST)
//! or `upload` (a ConPaaS multipart UPLOAD, with `file = { field, filename, text | hex }`);
//! `params` (a table or, for `jsonrpc`, an array) and `id` (for `post` and `jsonrpc`, 1 unless
//! given) are optional. Then: `status` (the HTTP status, 200 unless given), and `reply` (the
//! exact JSON body, as JSON text), `expect` (JSON text the body must contain: objects
//! recursively, anything else equal), `method_names` (the names of `result.methods`, in order)
//! or `text` (the exact body of a non-JSON answer).
//!
//! Each case starts a fresh agent with its own state; all share the run's component cache, so
//! only the first start of a component may compile it: every later start must load the
//! precompiled artifact (checked from the agent's log), which keeps the big components (Python,
//! JavaScript, Go) from slowing anything but the very first start.

use std::path::{Path, PathBuf};

use serde_json::{Value, json};

use crate::support::{AgentSetup, RawResponse, component, exchange, get, post, upload};

/// The reference implementation every other agent must answer exactly like.
const REFERENCE: &str = "helloworld-agent";

/// What the host logs when it compiles a component instead of loading it from the cache.
const COMPILED: &str = "compiled component";

fn cases() -> Vec<(String, toml::Table)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("conformance/agent");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let table: toml::Table =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            (f.file_name().unwrap().to_string_lossy().into_owned(), table)
        })
        .collect()
}

fn to_json(value: &toml::Value) -> Value {
    match value {
        toml::Value::String(s) => Value::String(s.clone()),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => json!(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => Value::Array(items.iter().map(to_json).collect()),
        toml::Value::Table(t) => {
            Value::Object(t.iter().map(|(k, v)| (k.clone(), to_json(v))).collect())
        }
    }
}

/// Whether `actual` contains everything in `expected`.
fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| contains(av, v))),
        (a, e) => a == e,
    }
}

fn json_text(step: &toml::Table, key: &str, at: &str) -> Option<Value> {
    step.get(key).map(|v| {
        let text = v
            .as_str()
            .unwrap_or_else(|| panic!("{at}: `{key}` must be JSON text"));
        serde_json::from_str(text).unwrap_or_else(|e| panic!("{at}: `{key}` is not JSON: {e}"))
    })
}

fn hex(text: &str, at: &str) -> Vec<u8> {
    assert!(text.len().is_multiple_of(2), "{at}: odd-length hex");
    (0..text.len())
        .step_by(2)
        .map(|i| {
            u8::from_str_radix(&text[i..i + 2], 16)
                .unwrap_or_else(|e| panic!("{at}: bad hex {text:?}: {e}"))
        })
        .collect()
}

/// Sends one step's request.
fn send(addr: std::net::SocketAddr, step: &toml::Table, at: &str) -> RawResponse {
    let params = step.get("params").map(to_json);
    let id = step.get("id").map(to_json).unwrap_or(json!(1));
    let method = |key: &str| step.get(key).and_then(|m| m.as_str());
    if let Some(method) = method("get") {
        get(addr, method, params.as_ref())
    } else if let Some(method) = method("post") {
        post(
            addr,
            &json!({"method": method, "params": params.unwrap_or(json!({})), "id": id}),
        )
    } else if let Some(method) = method("jsonrpc") {
        let mut body = json!({"jsonrpc": "2.0", "method": method, "id": id});
        if let Some(params) = params {
            body["params"] = params;
        }
        // JSON-RPC 2.0 keeps the connection open; this client asks for it to be closed so the
        // reply ends with the stream, like a ConPaaS one.
        let body = body.to_string();
        let request = format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nConnection: close\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        exchange(addr, request.as_bytes())
    } else if let Some(method) = method("upload") {
        let file = step
            .get("file")
            .and_then(|f| f.as_table())
            .unwrap_or_else(|| {
                panic!("{at}: an upload needs `file = {{ field, filename, text | hex }}`")
            });
        let field = file["field"].as_str().unwrap();
        let filename = file.get("filename").and_then(|f| f.as_str());
        let data = match (file.get("text"), file.get("hex")) {
            (Some(text), None) => text.as_str().unwrap().as_bytes().to_vec(),
            (None, Some(h)) => hex(h.as_str().unwrap(), at),
            _ => panic!("{at}: `file` needs exactly one of `text` and `hex`"),
        };
        upload(addr, method, &[(field, filename, &data)])
    } else {
        panic!("{at}: a step needs one of `get`, `post`, `jsonrpc` and `upload`")
    }
}

/// Runs every case against the agent `name`; returns what each step answered (status and body),
/// with the OpenRPC document's `info` left out (it names the component and its digest).
fn run_cases(name: &str) -> Vec<(String, u16, Value)> {
    let mut transcript = Vec::new();
    for (index, (file, case)) in cases().into_iter().enumerate() {
        let title = case["name"].as_str().unwrap_or(&file).to_string();
        let agent = AgentSetup::new("").start(&component(name));
        for (i, step) in case["step"].as_array().unwrap().iter().enumerate() {
            let at = format!("{name}: {file} ({title}), step {}", i + 1);
            let step = step.as_table().unwrap();
            let reply = send(agent.addr, step, &at);
            let status = step
                .get("status")
                .and_then(|s| s.as_integer())
                .unwrap_or(200);
            assert_eq!(
                i64::from(reply.status),
                status,
                "{at}: status; body {}",
                reply.text()
            );
            let mut body = if let Some(text) = step.get("text") {
                assert_eq!(reply.text(), text.as_str().unwrap(), "{at}: body");
                Value::String(reply.text())
            } else {
                reply.json()
            };
            if let Some(expected) = json_text(step, "reply", &at) {
                assert_eq!(body, expected, "{at}: reply");
            }
            if let Some(expected) = json_text(step, "expect", &at) {
                assert!(
                    contains(&body, &expected),
                    "{at}: {body} does not contain {expected}"
                );
            }
            if let Some(names) = step.get("method_names") {
                let actual: Vec<&str> = body["result"]["methods"]
                    .as_array()
                    .unwrap_or_else(|| panic!("{at}: no result.methods in {body}"))
                    .iter()
                    .map(|m| m["name"].as_str().unwrap_or_default())
                    .collect();
                let expected: Vec<&str> = names
                    .as_array()
                    .unwrap()
                    .iter()
                    .map(|n| n.as_str().unwrap())
                    .collect();
                assert_eq!(actual, expected, "{at}: method names");
            }
            if let Some(result) = body.get_mut("result").and_then(|r| r.as_object_mut()) {
                result.remove("info");
            }
            transcript.push((at, reply.status, body));
        }
        let log = agent.setup.log();
        for line in case
            .get("log")
            .and_then(|l| l.as_array())
            .into_iter()
            .flatten()
        {
            let line = line.as_str().unwrap();
            assert!(
                log.contains(line),
                "{name}: {file}: the log lacks {line:?}:\n{log}"
            );
        }
        if index > 0 {
            assert!(
                !log.contains(COMPILED),
                "{name}: {file}: the component was compiled again instead of loaded from the cache:\n{log}"
            );
        }
    }
    transcript
}

/// The cases against `name`, and its replies against the reference's.
pub fn conforms(name: &str) {
    let transcript = run_cases(name);
    if name == REFERENCE {
        return;
    }
    let reference = run_cases(REFERENCE);
    assert_eq!(transcript.len(), reference.len());
    for ((at, status, body), (_, ref_status, ref_body)) in transcript.iter().zip(&reference) {
        assert_eq!(
            (status, body),
            (ref_status, ref_body),
            "{at}: differs from {REFERENCE}"
        );
    }
}

#[test]
fn the_rust_helloworld_agent_conforms() {
    conforms("helloworld-agent");
}

#[test]
fn the_python_helloworld_agent_conforms() {
    conforms("helloworld-agent-py");
}

#[test]
fn the_javascript_helloworld_agent_conforms() {
    conforms("helloworld-agent-js");
}

#[test]
fn the_c_helloworld_agent_conforms() {
    conforms("helloworld-agent-c");
}

#[test]
fn the_go_helloworld_agent_conforms() {
    conforms("helloworld-agent-go");
}
