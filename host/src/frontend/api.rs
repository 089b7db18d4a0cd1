//! The frontend's API: JSON-RPC 2.0 over `POST /api`, the one interface of the dashboard and
//! the CLI. A session is a bearer token (`Authorization: Bearer TOKEN`) obtained from `login`;
//! passwords travel only in request bodies, never in a URL.
//!
//! Errors carry a code the clients act on and, for bad parameters, the field at fault
//! (`error.data.field`):
//!
//! | code   | meaning                                                      |
//! |--------|--------------------------------------------------------------|
//! | -32700 | the body is not JSON                                         |
//! | -32600 | not a JSON-RPC 2.0 request                                   |
//! | -32601 | no such method                                               |
//! | -32602 | invalid params (`data.field` names the field)                |
//! | -32001 | not logged in, or the token is unknown                       |
//! | -32003 | forbidden (not the owner, not an admin)                      |
//! | -32004 | no such service or user                                      |
//! | -32010 | not enough credit                                            |
//! | -32020 | the manager answered with an error (its message)             |
//! | -32030 | the manager did not answer                                   |
//! | -32603 | internal error (the database, the cloud)                     |

use std::sync::Arc;

use serde::Serialize;
use serde_json::{Map, Value, json};

use super::auth;
use super::services::Frontend;
use super::store::{StoreError, User};

/// A failed API call: code, message and the parameter at fault.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{message}")]
pub struct ApiError {
    pub code: i64,
    pub message: String,
    pub field: Option<String>,
}

impl ApiError {
    pub fn new(code: i64, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            field: None,
        }
    }

    /// Invalid params: `field` is expected to be `expected`.
    pub fn param(field: &str, message: impl Into<String>) -> Self {
        Self {
            code: INVALID_PARAMS,
            message: message.into(),
            field: Some(field.to_string()),
        }
    }

    pub fn internal(message: impl std::fmt::Display) -> Self {
        Self::new(INTERNAL, message.to_string())
    }

    fn to_json(&self) -> Value {
        let mut error = json!({"code": self.code, "message": self.message});
        if let Some(field) = &self.field {
            error["data"] = json!({"field": field});
        }
        error
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::NotEnoughCredit { .. } => ApiError::new(NOT_ENOUGH_CREDIT, e.to_string()),
            StoreError::UserExists(_) => ApiError::param("username", e.to_string()),
            StoreError::NoUser(_) => ApiError::new(NOT_FOUND, e.to_string()),
            other => {
                tracing::error!("{other}");
                ApiError::internal(other)
            }
        }
    }
}

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const UNAUTHORIZED: i64 = -32001;
pub const FORBIDDEN: i64 = -32003;
pub const NOT_FOUND: i64 = -32004;
pub const NOT_ENOUGH_CREDIT: i64 = -32010;
pub const MANAGER_ERROR: i64 = -32020;
pub const MANAGER_UNREACHABLE: i64 = -32030;
pub const INTERNAL: i64 = -32603;

/// The methods, with the parameters each takes (for `rpc.discover` and unknown-method
/// messages). A leading `?` marks an optional parameter.
pub const METHODS: &[(&str, &[&str])] = &[
    ("login", &["username", "password"]),
    ("logout", &[]),
    ("whoami", &[]),
    (
        "user.create",
        &["username", "password", "?credit", "?admin"],
    ),
    ("user.list", &[]),
    ("user.credit", &["?username"]),
    ("user.add_credit", &["username", "amount"]),
    ("catalogue", &[]),
    ("clouds", &[]),
    ("service.create", &["type", "?cloud", "?name"]),
    ("service.list", &[]),
    ("service.get", &["sid"]),
    ("service.rename", &["sid", "name"]),
    ("service.terminate", &["sid"]),
    ("service.discover", &["sid"]),
    ("service.call", &["sid", "method", "?params", "?files"]),
    ("rpc.discover", &[]),
];

/// Checked access to a request's params.
pub struct Params(Map<String, Value>);

impl Params {
    /// Refuses names the method does not take, so a typo is not silently ignored.
    fn new(method: &str, params: Option<Value>) -> Result<Self, ApiError> {
        let map = match params {
            None | Some(Value::Null) => Map::new(),
            Some(Value::Object(map)) => map,
            Some(_) => {
                return Err(ApiError::new(
                    INVALID_PARAMS,
                    "params must be an object of named parameters",
                ));
            }
        };
        let known = METHODS
            .iter()
            .find(|(name, _)| *name == method)
            .map(|(_, p)| *p)
            .unwrap_or(&[]);
        for key in map.keys() {
            if !known.iter().any(|p| p.trim_start_matches('?') == key) {
                let takes: Vec<&str> = known.iter().map(|p| p.trim_start_matches('?')).collect();
                return Err(ApiError::param(
                    key,
                    format!(
                        "{method} takes no parameter {key:?} (it takes: {})",
                        if takes.is_empty() {
                            "none".to_string()
                        } else {
                            takes.join(", ")
                        }
                    ),
                ));
            }
        }
        Ok(Self(map))
    }

    pub fn opt_str(&self, name: &str) -> Result<Option<&str>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::String(s)) => Ok(Some(s)),
            Some(other) => Err(ApiError::param(
                name,
                format!("{name} must be a string, found {other}"),
            )),
        }
    }

    pub fn str(&self, name: &str) -> Result<&str, ApiError> {
        self.opt_str(name)?
            .ok_or_else(|| ApiError::param(name, format!("missing parameter {name} (a string)")))
    }

    pub fn opt_i64(&self, name: &str) -> Result<Option<i64>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(v) => v.as_i64().map(Some).ok_or_else(|| {
                ApiError::param(name, format!("{name} must be an integer, found {v}"))
            }),
        }
    }

    pub fn i64(&self, name: &str) -> Result<i64, ApiError> {
        self.opt_i64(name)?
            .ok_or_else(|| ApiError::param(name, format!("missing parameter {name} (an integer)")))
    }

    pub fn opt_bool(&self, name: &str) -> Result<Option<bool>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(None),
            Some(Value::Bool(b)) => Ok(Some(*b)),
            Some(v) => Err(ApiError::param(
                name,
                format!("{name} must be true or false, found {v}"),
            )),
        }
    }

    pub fn opt_object(&self, name: &str) -> Result<Map<String, Value>, ApiError> {
        match self.0.get(name) {
            None | Some(Value::Null) => Ok(Map::new()),
            Some(Value::Object(map)) => Ok(map.clone()),
            Some(v) => Err(ApiError::param(
                name,
                format!("{name} must be an object of named parameters, found {v}"),
            )),
        }
    }
}

/// Handles one request body; returns the reply body.
pub async fn handle(frontend: &Arc<Frontend>, token: Option<&str>, body: &[u8]) -> Value {
    let request: Value = match serde_json::from_slice(body) {
        Ok(v) => v,
        Err(e) => {
            return reply(
                Value::Null,
                Err(ApiError::new(
                    PARSE_ERROR,
                    format!("the body is not JSON: {e}"),
                )),
            );
        }
    };
    let Value::Object(mut request) = request else {
        return reply(
            Value::Null,
            Err(ApiError::new(
                INVALID_REQUEST,
                "expected a JSON-RPC 2.0 request object",
            )),
        );
    };
    let id = request.remove("id").unwrap_or(Value::Null);
    if request.get("jsonrpc") != Some(&json!("2.0")) {
        return reply(
            id,
            Err(ApiError::new(
                INVALID_REQUEST,
                "expected \"jsonrpc\": \"2.0\"",
            )),
        );
    }
    let Some(Value::String(method)) = request.remove("method") else {
        return reply(
            id,
            Err(ApiError::new(
                INVALID_REQUEST,
                "expected \"method\": a string",
            )),
        );
    };
    let result = dispatch(frontend, token, &method, request.remove("params")).await;
    if let Err(e) = &result
        && e.code == INTERNAL
    {
        tracing::warn!(%method, "{}", e.message);
    }
    reply(id, result)
}

fn reply(id: Value, result: Result<Value, ApiError>) -> Value {
    match result {
        Ok(result) => json!({"jsonrpc": "2.0", "id": id, "result": result}),
        Err(e) => json!({"jsonrpc": "2.0", "id": id, "error": e.to_json()}),
    }
}

fn to_value(value: impl Serialize) -> Result<Value, ApiError> {
    serde_json::to_value(value).map_err(ApiError::internal)
}

async fn dispatch(
    fe: &Arc<Frontend>,
    token: Option<&str>,
    method: &str,
    params: Option<Value>,
) -> Result<Value, ApiError> {
    if !METHODS.iter().any(|(name, _)| *name == method) {
        let names: Vec<&str> = METHODS.iter().map(|(n, _)| *n).collect();
        return Err(ApiError::new(
            METHOD_NOT_FOUND,
            format!("no method {method:?}; the API has: {}", names.join(", ")),
        ));
    }
    let p = Params::new(method, params)?;
    // Methods anyone may call.
    match method {
        "rpc.discover" => return Ok(discover()),
        "login" => {
            let (token, user) = fe.login(p.str("username")?, p.str("password")?).await?;
            return Ok(json!({"token": token, "user": user}));
        }
        "user.create" => {
            let caller = match token {
                Some(t) => Some(fe.authenticate(t).await?),
                None => None,
            };
            let user = fe
                .create_user(
                    caller.as_ref(),
                    p.str("username")?,
                    p.str("password")?,
                    p.opt_i64("credit")?,
                    p.opt_bool("admin")?.unwrap_or(false),
                )
                .await?;
            return to_value(user);
        }
        "catalogue" => return to_value(fe.catalogue()),
        "clouds" => return to_value(fe.cloud_names()),
        _ => {}
    }
    let token = token.ok_or_else(|| {
        ApiError::new(
            UNAUTHORIZED,
            "not logged in: send Authorization: Bearer TOKEN (from login)",
        )
    })?;
    let user = fe.authenticate(token).await?;
    match method {
        "logout" => {
            fe.logout(token).await?;
            Ok(json!({}))
        }
        "whoami" => to_value(&user),
        "user.list" => {
            require_admin(&user)?;
            to_value(fe.store.users().await?)
        }
        "user.credit" => {
            let target = match p.opt_str("username")? {
                Some(name) if name != user.username => {
                    require_admin(&user)?;
                    fe.user_named(name).await?
                }
                _ => user,
            };
            let ledger = fe.store.ledger(target.id, 100).await?;
            Ok(json!({"user": target, "ledger": ledger}))
        }
        "user.add_credit" => {
            require_admin(&user)?;
            let target = fe.user_named(p.str("username")?).await?;
            let amount = p.i64("amount")?;
            fe.add_credit(&user, &target, amount).await?;
            to_value(fe.user_named(&target.username).await?)
        }
        "service.create" => to_value(
            fe.create_service(
                &user,
                p.str("type")?,
                p.opt_str("cloud")?,
                p.opt_str("name")?,
            )
            .await?,
        ),
        "service.list" => to_value(fe.list_services(&user).await?),
        "service.get" => {
            let service = fe.owned_service(&user, p.i64("sid")?).await?;
            to_value(fe.refresh(service).await?)
        }
        "service.rename" => {
            let service = fe.owned_service(&user, p.i64("sid")?).await?;
            to_value(fe.rename(service, p.str("name")?).await?)
        }
        "service.terminate" => {
            let service = fe.owned_service(&user, p.i64("sid")?).await?;
            fe.terminate(service, "terminated by its owner").await?;
            Ok(json!({}))
        }
        "service.discover" => {
            let service = fe.owned_service(&user, p.i64("sid")?).await?;
            fe.discover(&service).await
        }
        "service.call" => {
            let service = fe.owned_service(&user, p.i64("sid")?).await?;
            let method = p.str("method")?;
            let params = p.opt_object("params")?;
            let files = p.opt_object("files")?;
            fe.call(&service, method, params, files).await
        }
        other => Err(ApiError::internal(format!("method {other} is not wired"))),
    }
}

fn require_admin(user: &User) -> Result<(), ApiError> {
    if user.admin {
        Ok(())
    } else {
        Err(ApiError::new(
            FORBIDDEN,
            format!("{} is not an administrator", user.username),
        ))
    }
}

/// A short OpenRPC-style listing of the API.
fn discover() -> Value {
    let methods: Vec<Value> = METHODS
        .iter()
        .map(|(name, params)| {
            let params: Vec<Value> = params
                .iter()
                .map(
                    |p| json!({"name": p.trim_start_matches('?'), "required": !p.starts_with('?')}),
                )
                .collect();
            json!({"name": name, "params": params})
        })
        .collect();
    json!({
        "openrpc": "1.3.2",
        "info": {"title": "paasm frontend", "version": env!("CARGO_PKG_VERSION")},
        "methods": methods,
    })
}

/// The token of an `Authorization: Bearer TOKEN` header value.
pub fn bearer(header: Option<&str>) -> Option<&str> {
    header
        .and_then(|h| {
            h.strip_prefix("Bearer ")
                .or_else(|| h.strip_prefix("bearer "))
        })
        .map(str::trim)
        .filter(|t| !t.is_empty())
}

/// A token's database form (re-exported for the services module).
pub(super) fn token_hash(token: &str) -> String {
    auth::secret_hash(token)
}
