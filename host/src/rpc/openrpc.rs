//! The OpenRPC document served as `rpc.discover`, generated from the component's types.
//!
//! Each method lists its parameters with JSON Schemas derived from their WIT types (see
//! `values`), its result, and its ConPaaS verb namespace as the extension field `x-verb`.

use std::collections::HashMap;

use serde_json::{Value, json};
use wasmtime::component::types::Type;

use super::values::schema;
use super::{Builtin, MethodTable};

/// The schema of a method's reply: the ok payload of a `result`, `{}` for no value.
fn result_schema(result: Option<&Type>) -> Value {
    match result {
        None => json!({"type": "object", "maxProperties": 0}),
        Some(Type::Result(r)) => match r.ok() {
            Some(ok) => schema(&ok),
            None => json!({"type": "object", "maxProperties": 0}),
        },
        Some(ty) => schema(ty),
    }
}

/// Builds the document.
pub(super) fn document(
    title: &str,
    version: &str,
    methods: &MethodTable,
    builtins: &HashMap<String, Builtin>,
) -> Value {
    let mut entries = Vec::new();
    for m in methods.iter() {
        let params: Vec<Value> = m
            .params
            .iter()
            .map(|p| {
                json!({
                    "name": p.name,
                    "required": !matches!(p.ty, Type::Option(_)),
                    "schema": schema(&p.ty),
                })
            })
            .collect();
        let mut entry = json!({
            "name": m.name,
            "x-verb": m.verb.as_str(),
            "paramStructure": "either",
            "params": params,
            "result": {"name": "result", "schema": result_schema(m.result.as_ref())},
        });
        if let Some(Type::Result(r)) = &m.result {
            let err = r
                .err()
                .map(|t| schema(&t))
                .unwrap_or(json!({"type": "null"}));
            entry["x-error"] = json!({"code": -32000, "schema": err});
        }
        entries.push(entry);
    }
    let mut names: Vec<&String> = builtins.keys().collect();
    names.sort();
    for name in names {
        let b = &builtins[name];
        entries.push(json!({
            "name": name,
            "summary": b.summary,
            "x-verb": b.verb.as_str(),
            "params": b.params.iter().map(|p| json!({
                "name": p.name,
                "required": p.required,
                "schema": p.schema,
            })).collect::<Vec<_>>(),
            "result": {"name": "result", "schema": b.result_schema},
        }));
    }
    entries.push(json!({
        "name": super::DISCOVER,
        "summary": "this document",
        "x-verb": "GET",
        "params": [],
        "result": {"name": "openrpc", "schema": {"type": "object"}},
    }));
    json!({
        "openrpc": "1.3.2",
        "info": {"title": title, "version": version},
        "methods": entries,
    })
}
