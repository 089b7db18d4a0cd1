//! `paasm resources`: the resource engine served over the host's JSON-RPC dialects.
//!
//! Methods (POST): `create`, `get`, `update`, `delete`, `suspend`, `resume`, `list`,
//! `describe`, `job`. Each names `resource` (the logical name) and, but for `list` and
//! `describe`, `key` (the logical key); a child also names `parent`, the path from the root
//! as `[[resource, key], ...]`. `create` and `update` take `params` (an object) and
//! `dry_run`. Errors have their own JSON-RPC 2.0 codes (see [`codes`]); in the ConPaaS dialect
//! they are the `error` string.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::Arc;

use anyhow::{Context, Result};
use serde_json::{Map, Value, json};

use super::engine::{Engine, EngineError, Path, Request};
use super::registry::{self, Locations};
use super::schema::Op;
use super::store::InstanceStore;
use crate::engine::{Runtime, RuntimeOptions};
use crate::rpc::{Builtin, BuiltinParam, CallError, Dispatcher, Params, Verb};

/// The JSON-RPC 2.0 error codes of the resource methods.
pub mod codes {
    /// `ResourceAlreadyExists`: create found the instance.
    pub const ALREADY_EXISTS: i64 = -32010;
    /// `ResourceNotFound`: the instance (or a parent, or a job) does not exist.
    pub const NOT_FOUND: i64 = -32011;
    /// `ResourceInvalidParameter`: `data.parameters` lists each `{name, message}`.
    pub const INVALID_PARAMETER: i64 = -32012;
    /// The logical resource is not configured.
    pub const UNKNOWN_RESOURCE: i64 = -32013;
    /// The request itself is malformed (JSON-RPC 2.0's invalid params).
    pub const INVALID_REQUEST: i64 = -32602;
    /// Anything else the implementation or the engine reports.
    pub const FAILED: i64 = -32000;
}

/// What `paasm resources` was asked to run.
#[derive(Debug, Clone)]
pub struct ResourcesOptions {
    pub config: PathBuf,
    pub data: PathBuf,
    pub components: PathBuf,
    pub listen: String,
    pub cache_dir: Option<PathBuf>,
}

fn coded(e: EngineError) -> CallError {
    let message = e.to_string();
    let (code, data) = match &e {
        EngineError::AlreadyExists(_) => (codes::ALREADY_EXISTS, None),
        EngineError::NotFound(_) => (codes::NOT_FOUND, None),
        EngineError::InvalidParameters(list) => (
            codes::INVALID_PARAMETER,
            Some(
                json!({"parameters": list.iter().map(|(n, m)| json!({"name": n, "message": m})).collect::<Vec<_>>()}),
            ),
        ),
        EngineError::UnknownResource { .. } => (codes::UNKNOWN_RESOURCE, None),
        EngineError::Failed(_) => (codes::FAILED, None),
    };
    CallError::Coded {
        code,
        message,
        data,
    }
}

fn bad(message: String) -> CallError {
    CallError::Coded {
        code: codes::INVALID_REQUEST,
        message,
        data: None,
    }
}

fn object(params: Params) -> Result<Map<String, Value>, CallError> {
    match params {
        Params::None => Ok(Map::new()),
        Params::Named(map) => Ok(map),
        _ => Err(bad("expected named params (a JSON object)".into())),
    }
}

fn allowed(params: &Map<String, Value>, names: &[&str]) -> Result<(), CallError> {
    match params.keys().find(|k| !names.contains(&k.as_str())) {
        Some(k) => Err(bad(format!(
            "unexpected param {k:?}; expected: {}",
            names.join(", ")
        ))),
        None => Ok(()),
    }
}

fn text_param(params: &Map<String, Value>, name: &str) -> Result<String, CallError> {
    match params.get(name) {
        Some(Value::String(s)) => Ok(s.clone()),
        Some(Value::Number(n)) if n.is_i64() => Ok(n.to_string()),
        Some(_) => Err(bad(format!("invalid {name:?}: expected a string"))),
        None => Err(bad(format!("missing {name:?}"))),
    }
}

fn parent_param(params: &Map<String, Value>) -> Result<Path, CallError> {
    let expected = || {
        bad("invalid \"parent\": expected a list of [resource, key] pairs, such as [[\"account\", \"alice\"]]".into())
    };
    match params.get("parent") {
        None | Some(Value::Null) => Ok(Vec::new()),
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item.as_array().map(Vec::as_slice) {
                Some([Value::String(r), Value::String(k)]) => Ok((r.clone(), k.clone())),
                Some([Value::String(r), Value::Number(k)]) if k.is_i64() => {
                    Ok((r.clone(), k.to_string()))
                }
                _ => Err(expected()),
            })
            .collect(),
        Some(_) => Err(expected()),
    }
}

fn instance_params(params: &Map<String, Value>) -> Result<BTreeMap<String, String>, CallError> {
    match params.get("params") {
        None | Some(Value::Null) => Ok(BTreeMap::new()),
        Some(Value::Object(map)) => map
            .iter()
            .map(|(k, v)| match v {
                Value::String(s) => Ok((k.clone(), s.clone())),
                Value::Number(n) => Ok((k.clone(), n.to_string())),
                Value::Bool(b) => Ok((k.clone(), b.to_string())),
                _ => Err(bad(format!(
                    "invalid \"params.{k}\": expected a string, number or boolean"
                ))),
            })
            .collect(),
        Some(_) => Err(bad("invalid \"params\": expected an object".into())),
    }
}

fn request(op: Op, params: Params) -> Result<Request, CallError> {
    let params = object(params)?;
    let with_params = matches!(op, Op::Create | Op::Update);
    if with_params {
        allowed(&params, &["resource", "key", "parent", "params", "dry_run"])?;
    } else {
        allowed(&params, &["resource", "key", "parent", "dry_run"])?;
    }
    let dry_run = match params.get("dry_run") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => return Err(bad("invalid \"dry_run\": expected true or false".into())),
    };
    Ok(Request {
        op,
        resource: text_param(&params, "resource")?,
        parent: parent_param(&params)?,
        key: text_param(&params, "key")?,
        params: if with_params {
            instance_params(&params)?
        } else {
            BTreeMap::new()
        },
        dry_run,
    })
}

/// The engine's methods as host methods of a dispatcher.
pub fn builtins(engine: &Arc<Engine>) -> Vec<(&'static str, Builtin)> {
    let string = |name: &'static str, required: bool| BuiltinParam {
        name,
        schema: json!({"type": "string"}),
        required,
    };
    let parent = BuiltinParam {
        name: "parent",
        schema: json!({"type": "array", "items": {"type": "array", "minItems": 2, "maxItems": 2}}),
        required: false,
    };
    let params_param = BuiltinParam {
        name: "params",
        schema: json!({"type": "object"}),
        required: false,
    };
    let dry = BuiltinParam {
        name: "dry_run",
        schema: json!({"type": "boolean"}),
        required: false,
    };
    let result = json!({"type": "object"});
    let mut out = Vec::new();
    let ops: [(&'static str, Op, &'static str); 6] = [
        (
            "create",
            Op::Create,
            "creates an instance (or, offline, queues it: {job})",
        ),
        (
            "get",
            Op::Get,
            "an instance's parameters, from its implementation",
        ),
        (
            "update",
            Op::Update,
            "changes the given parameters of an instance",
        ),
        ("delete", Op::Delete, "deletes an instance"),
        ("suspend", Op::Suspend, "suspends an instance"),
        ("resume", Op::Resume, "resumes a suspended instance"),
    ];
    for (name, op, summary) in ops {
        let engine = engine.clone();
        let mut documented = vec![
            string("resource", true),
            string("key", true),
            parent.clone(),
        ];
        if matches!(op, Op::Create | Op::Update) {
            documented.push(params_param.clone());
        }
        documented.push(dry.clone());
        out.push((
            name,
            Builtin::new(Verb::Post, summary, result.clone(), move |p| {
                let engine = engine.clone();
                async move {
                    let request = request(op, p)?;
                    engine.call(request).await.map_err(coded)
                }
            })
            .checking_params(documented),
        ));
    }
    let e = engine.clone();
    out.push((
        "list",
        Builtin::new(
            Verb::Post,
            "the keys of a resource's instances under a parent",
            result.clone(),
            move |p| {
                let engine = e.clone();
                async move {
                    let params = object(p)?;
                    allowed(&params, &["resource", "parent"])?;
                    let resource = text_param(&params, "resource")?;
                    let parent = parent_param(&params)?;
                    engine.list(&resource, &parent).await.map_err(coded)
                }
            },
        )
        .checking_params(vec![string("resource", true), parent.clone()]),
    ));
    let e = engine.clone();
    out.push((
        "describe",
        Builtin::new(
            Verb::Post,
            "a resource's active implementation: attributes and schemas",
            result.clone(),
            move |p| {
                let engine = e.clone();
                async move {
                    let params = object(p)?;
                    allowed(&params, &["resource"])?;
                    engine
                        .describe(&text_param(&params, "resource")?)
                        .map_err(coded)
                }
            },
        )
        .checking_params(vec![string("resource", true)]),
    ));
    let e = engine.clone();
    out.push((
        "job",
        Builtin::new(
            Verb::Post,
            "the state and outcome of an offline operation",
            result,
            move |p| {
                let engine = e.clone();
                async move {
                    let params = object(p)?;
                    allowed(&params, &["id"])?;
                    let id = params.get("id").and_then(Value::as_i64).ok_or_else(|| {
                        bad("missing or invalid \"id\": expected the job's number".into())
                    })?;
                    engine.job(id).map_err(coded)
                }
            },
        )
        .checking_params(vec![BuiltinParam {
            name: "id",
            schema: json!({"type": "integer"}),
            required: true,
        }]),
    ));
    out
}

/// Loads the configuration and serves the engine until SIGINT or SIGTERM. Prints `paasm
/// resources listening on http://ADDR` once it serves.
pub async fn run(options: ResourcesOptions) -> Result<()> {
    use std::io::Write;
    let runtime = Runtime::new(&RuntimeOptions {
        cache_dir: options.cache_dir.clone(),
        ..RuntimeOptions::default()
    })?;
    let active = registry::load(
        &options.config,
        &runtime,
        &Locations {
            components: &options.components,
            data: &options.data,
        },
    )
    .await?;
    let store = InstanceStore::open(Some(&options.data.join("resources.sqlite")))?;
    let engine = Engine::new(active, store);
    tokio::spawn(engine.clone().run_jobs());
    let dispatcher = Arc::new(Dispatcher::host_only(
        "paasm resources",
        env!("CARGO_PKG_VERSION"),
        builtins(&engine),
    ));
    let addr = crate::rpc::listen_addr(&options.listen).await?;
    let shutdown = crate::service::agent::shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    tracing::info!(%local, resources = ?engine.names(), "resources listening");
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "paasm resources listening on http://{local}")?;
        stdout.flush()?;
    }
    // Shared: a control-plane server, off the path of a service's own clients.
    crate::rpc::serve(
        listener,
        dispatcher,
        None,
        crate::rpc::Threads::Shared,
        shutdown,
    )
    .await;
    Ok(())
}
