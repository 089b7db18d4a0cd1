//! The JSON-RPC server: one HTTP endpoint, two wire dialects, methods from WIT.
//!
//! - `server`: hyper 1 accept loop and the HTTP-level rules (path `/` only, Content-Type
//!   required, verbs, body limits), then hands the request to a dialect.
//! - `conpaas`: the original ConPaaS envelope, byte-compatible with its clients.
//! - `client`: the same dialect from the calling side (a manager calling its agents).
//! - `jsonrpc2`: JSON-RPC 2.0 (error objects, batches, notifications).
//! - `methods`: the method table read from a component's exported types.
//! - `values`: JSON to component values and back.
//! - `openrpc`: the `rpc.discover` document.
//! - `tls`: HTTPS and mutual TLS from PEM files.
//!
//! [`Dispatcher`] is what both dialects call: it owns the method table of one guest plus the
//! methods the host answers itself.

pub mod client;
mod conpaas;
mod jsonrpc2;
pub mod methods;
mod openrpc;
mod server;
pub mod tls;
pub mod values;

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, OnceLock};

use bytes::Bytes;
use serde_json::{Map, Value, json};
use wasmtime::component::Val;
use wasmtime::component::types::Type;

pub use methods::{Method, MethodError, MethodTable};
pub use server::{HttpResponse, Threads, listen_addr, serve, serve_http};
pub use values::ParamError;

use crate::engine::{Guest, GuestError};

/// The HTTP verb namespace a method lives in (ConPaaS `@expose('GET'|'POST'|'UPLOAD')`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    Get,
    Post,
    Upload,
}

impl Verb {
    pub fn as_str(self) -> &'static str {
        match self {
            Verb::Get => "GET",
            Verb::Post => "POST",
            Verb::Upload => "UPLOAD",
        }
    }
}

/// One field of a multipart (UPLOAD) request.
#[derive(Debug, Clone)]
pub struct FormField {
    pub name: String,
    /// The file name, for file fields.
    pub filename: Option<String>,
    pub data: Bytes,
}

/// The parameters of a request, before they meet a method's types.
#[derive(Debug, Clone)]
pub enum Params {
    /// Absent, `null` or `[]` (the PHP frontend's "no params").
    None,
    Named(Map<String, Value>),
    /// JSON-RPC 2.0 only.
    Positional(Vec<Value>),
    /// The fields of an UPLOAD request (the `method` field removed).
    Form(Vec<FormField>),
}

impl Params {
    fn is_empty(&self) -> bool {
        match self {
            Params::None => true,
            Params::Named(m) => m.is_empty(),
            Params::Positional(v) => v.is_empty(),
            Params::Form(f) => f.is_empty(),
        }
    }
}

/// Why a call produced no result.
#[derive(Debug)]
pub enum CallError {
    /// No such method in the request's verb namespace.
    MethodNotFound,
    /// A parameter does not fit the method's types; the guest did not run.
    InvalidParams(ParamError),
    /// The method ran and returned an error value.
    Application {
        message: String,
        data: Option<Value>,
    },
    /// A host method's error of a documented kind, with its own JSON-RPC 2.0 code (the
    /// resource engine's already-exists, not-found, invalid-parameter, ...).
    Coded {
        code: i64,
        message: String,
        data: Option<Value>,
    },
    /// The guest trapped, panicked, timed out or ran out of memory.
    Guest(GuestError),
    /// The host failed.
    Internal(String),
}

type BoxFuture = Pin<Box<dyn Future<Output = Result<Value, CallError>> + Send>>;

/// One documented parameter of a host method.
#[derive(Debug, Clone)]
pub struct BuiltinParam {
    pub name: &'static str,
    pub schema: Value,
    pub required: bool,
}

/// A method the host answers itself.
#[derive(Clone)]
pub struct Builtin {
    pub verb: Verb,
    pub summary: &'static str,
    pub result_schema: Value,
    /// The parameters, for the OpenRPC document.
    pub params: Vec<BuiltinParam>,
    /// Whether the handler checks its parameters itself; otherwise any parameter is refused
    /// before the handler runs.
    own_checks: bool,
    handler: Arc<dyn Fn(Params) -> BoxFuture + Send + Sync>,
}

impl Builtin {
    /// A host method without parameters.
    pub fn new<F, Fut>(verb: Verb, summary: &'static str, result_schema: Value, handler: F) -> Self
    where
        F: Fn(Params) -> Fut + Send + Sync + 'static,
        Fut: Future<Output = Result<Value, CallError>> + Send + 'static,
    {
        Self {
            verb,
            summary,
            result_schema,
            params: Vec::new(),
            own_checks: false,
            handler: Arc::new(move |params| Box::pin(handler(params))),
        }
    }

    /// The same method, receiving its parameters as sent and checking them itself (to answer
    /// with a service's own error strings); `params` documents them.
    pub fn checking_params(mut self, params: Vec<BuiltinParam>) -> Self {
        self.params = params;
        self.own_checks = true;
        self
    }
}

/// A file a server hands out under `/code/` (a manager's code for its agents).
#[derive(Debug, Clone)]
pub enum CodeFile {
    /// Served from memory.
    Bytes(Bytes),
    /// Read from disk at each request.
    Path(std::path::PathBuf),
}

/// The name under which the OpenRPC document is served.
pub const DISCOVER: &str = "rpc.discover";

/// Routes calls to host methods and to the methods of one guest.
pub struct Dispatcher {
    title: String,
    version: String,
    guest: Option<Arc<Guest>>,
    methods: MethodTable,
    builtins: HashMap<String, Builtin>,
    files: HashMap<String, CodeFile>,
    openrpc: OnceLock<Value>,
}

impl Dispatcher {
    /// Serves `guest`'s methods beside the host's `builtins`.
    pub fn new(
        title: &str,
        version: &str,
        guest: Arc<Guest>,
        builtins: Vec<(&str, Builtin)>,
    ) -> Result<Self, MethodError> {
        let mut reserved: Vec<&str> = builtins.iter().map(|(n, _)| *n).collect();
        reserved.push(DISCOVER);
        let methods = MethodTable::from_exports(guest.exports(), &reserved)?;
        Ok(Self {
            title: title.to_string(),
            version: version.to_string(),
            guest: Some(guest),
            methods,
            builtins: builtins
                .into_iter()
                .map(|(n, b)| (n.to_string(), b))
                .collect(),
            files: HashMap::new(),
            openrpc: OnceLock::new(),
        })
    }

    /// Serves only the host's `builtins` (a server with no component of its own, such as the
    /// resource engine).
    pub fn host_only(title: &str, version: &str, builtins: Vec<(&str, Builtin)>) -> Self {
        Self {
            title: title.to_string(),
            version: version.to_string(),
            guest: None,
            methods: MethodTable::default(),
            builtins: builtins
                .into_iter()
                .map(|(n, b)| (n.to_string(), b))
                .collect(),
            files: HashMap::new(),
            openrpc: OnceLock::new(),
        }
    }

    /// Also serves `files` under `/code/<name>` (GET, no Content-Type needed).
    pub fn with_files(mut self, files: impl IntoIterator<Item = (String, CodeFile)>) -> Self {
        self.files.extend(files);
        self
    }

    /// The file served as `/code/<name>`, if any.
    pub fn file(&self, name: &str) -> Option<&CodeFile> {
        self.files.get(name)
    }

    /// The guest's methods.
    pub fn methods(&self) -> &MethodTable {
        &self.methods
    }

    /// Calls `method` in the namespace of `verb` (`None`: any namespace, as in JSON-RPC 2.0).
    pub async fn call(
        &self,
        verb: Option<Verb>,
        method: &str,
        params: Params,
    ) -> Result<Value, CallError> {
        let in_namespace = |v: Verb| verb.is_none_or(|verb| verb == v);
        if method == DISCOVER && in_namespace(Verb::Get) {
            return Ok(self.openrpc().clone());
        }
        if let Some(builtin) = self.builtins.get(method) {
            if !in_namespace(builtin.verb) {
                return Err(CallError::MethodNotFound);
            }
            if !builtin.own_checks && !params.is_empty() {
                let key = match &params {
                    Params::Named(m) => m.keys().next().cloned().unwrap_or_default(),
                    Params::Form(f) => f[0].name.clone(),
                    _ => "params[0]".to_string(),
                };
                return Err(CallError::InvalidParams(ParamError {
                    path: key,
                    expected: String::new(),
                    problem: values::Problem::Unexpected {
                        allowed: Vec::new(),
                    },
                }));
            }
            return (builtin.handler)(params).await;
        }
        let Some(m) = self.methods.get(method).filter(|m| in_namespace(m.verb)) else {
            return Err(CallError::MethodNotFound);
        };
        let args = m.arguments(&params).map_err(CallError::InvalidParams)?;
        let guest = self
            .guest
            .as_ref()
            .ok_or_else(|| CallError::Internal("no component serves this method".into()))?;
        // Boxed: a guest call's future holds wasmtime's instantiation and call futures, and
        // unboxed it would be copied into every enclosing future (dialect, route, connection)
        // on every request.
        let results = Box::pin(guest.call(&m.func, &args))
            .await
            .map_err(CallError::Guest)?;
        reply(m, results)
    }

    fn openrpc(&self) -> &Value {
        self.openrpc.get_or_init(|| {
            openrpc::document(&self.title, &self.version, &self.methods, &self.builtins)
        })
    }
}

/// The reply of a method: a `result<T, E>` becomes T or the error E; no result becomes `{}`.
fn reply(method: &Method, results: Vec<Val>) -> Result<Value, CallError> {
    let Some(value) = results.into_iter().next() else {
        return Ok(json!({}));
    };
    match (&method.result, value) {
        (Some(Type::Result(_)), Val::Result(Ok(payload))) => {
            Ok(payload.map_or_else(|| json!({}), |v| values::to_json(&v)))
        }
        (Some(Type::Result(_)), Val::Result(Err(payload))) => Err(match payload.as_deref() {
            None => CallError::Application {
                message: format!("{} failed", method.name),
                data: None,
            },
            Some(Val::String(message)) => CallError::Application {
                message: message.clone(),
                data: None,
            },
            Some(other) => {
                let data = values::to_json(other);
                CallError::Application {
                    message: data.to_string(),
                    data: Some(data),
                }
            }
        }),
        (_, value) => Ok(values::to_json(&value)),
    }
}
