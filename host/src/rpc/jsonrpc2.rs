//! JSON-RPC 2.0: single requests, batches and notifications on a kept-alive connection.
//!
//! Error codes: -32700 parse error, -32600 invalid request, -32601 method not found, -32602
//! invalid params (with `data: {param, expected, message}`), -32603 host failure, and the
//! application range: -32000 the method returned an error value (`data` carries a non-string
//! error payload), -32001 the guest trapped or panicked, -32002 it ran past its deadline,
//! -32003 it ran out of memory (each with `data: {kind, stderr}`). Any method can be called
//! whatever its ConPaaS verb namespace.

use futures_util::future::join_all;
use hyper::StatusCode;
use serde_json::{Map, Value, json};

use super::server::{HttpResponse, json as json_response};
use super::values::Problem;
use super::{CallError, Dispatcher, Params};
use crate::engine::GuestErrorKind;

pub const PARSE_ERROR: i64 = -32700;
pub const INVALID_REQUEST: i64 = -32600;
pub const METHOD_NOT_FOUND: i64 = -32601;
pub const INVALID_PARAMS: i64 = -32602;
pub const INTERNAL_ERROR: i64 = -32603;
pub const APPLICATION_ERROR: i64 = -32000;
pub const GUEST_TRAP: i64 = -32001;
pub const GUEST_TIMEOUT: i64 = -32002;
pub const GUEST_MEMORY: i64 = -32003;

fn error_object(code: i64, message: String, data: Option<Value>, id: Value) -> Value {
    let mut error = Map::new();
    error.insert("code".into(), code.into());
    error.insert("message".into(), Value::String(message));
    if let Some(data) = data {
        error.insert("data".into(), data);
    }
    json!({"jsonrpc": "2.0", "error": error, "id": id})
}

/// The reply to a body that is not JSON.
pub(super) fn parse_error(detail: &str) -> HttpResponse {
    json_response(
        StatusCode::OK,
        &error_object(
            PARSE_ERROR,
            format!("Parse error: {detail}"),
            None,
            Value::Null,
        ),
        false,
    )
}

/// Handles a request object or a batch.
pub(super) async fn handle(dispatcher: &Dispatcher, body: Value) -> HttpResponse {
    let reply = match body {
        Value::Array(items) if items.is_empty() => Some(error_object(
            INVALID_REQUEST,
            "Invalid Request: empty batch".into(),
            None,
            Value::Null,
        )),
        Value::Array(items) => {
            let replies: Vec<Value> = join_all(items.into_iter().map(|item| one(dispatcher, item)))
                .await
                .into_iter()
                .flatten()
                .collect();
            (!replies.is_empty()).then_some(Value::Array(replies))
        }
        single => one(dispatcher, single).await,
    };
    match reply {
        Some(reply) => json_response(StatusCode::OK, &reply, false),
        None => {
            let mut response = json_response(StatusCode::NO_CONTENT, &Value::Null, false);
            *response.body_mut() = Default::default();
            response
        }
    }
}

fn invalid(message: &str, id: Value) -> Option<Value> {
    Some(error_object(
        INVALID_REQUEST,
        format!("Invalid Request: {message}"),
        None,
        id,
    ))
}

/// Handles one request; `None` for a notification.
async fn one(dispatcher: &Dispatcher, request: Value) -> Option<Value> {
    let Value::Object(mut request) = request else {
        return invalid("a request must be a JSON object", Value::Null);
    };
    let id = request.remove("id");
    let id_ok = matches!(
        id,
        None | Some(Value::Null | Value::String(_) | Value::Number(_))
    );
    if !id_ok {
        return invalid("id must be a string, a number or null", Value::Null);
    }
    let reply_id = id.clone().unwrap_or(Value::Null);
    if request.get("jsonrpc").is_none_or(|v| v != "2.0") {
        return invalid("jsonrpc must be \"2.0\"", reply_id);
    }
    let method = match request.remove("method") {
        Some(Value::String(method)) => method,
        Some(_) => return invalid("method must be a string", reply_id),
        None => return invalid("method is missing", reply_id),
    };
    let params = match request.remove("params") {
        None | Some(Value::Null) => Params::None,
        Some(Value::Object(map)) => Params::Named(map),
        Some(Value::Array(items)) => Params::Positional(items),
        Some(_) => {
            let reply = error_object(
                INVALID_PARAMS,
                "Invalid params: params must be an object or an array".into(),
                None,
                reply_id,
            );
            return id.is_some().then_some(reply);
        }
    };
    let outcome = dispatcher.call(None, &method, params).await;
    // A notification gets no reply, whatever happened.
    id.as_ref()?;
    Some(match outcome {
        Ok(result) => json!({"jsonrpc": "2.0", "result": result, "id": reply_id}),
        Err(e) => {
            let (code, message, data) = describe(&method, e);
            error_object(code, message, data, reply_id)
        }
    })
}

fn describe(method: &str, error: CallError) -> (i64, String, Option<Value>) {
    match error {
        CallError::MethodNotFound => (
            METHOD_NOT_FOUND,
            format!("Method not found: {method}"),
            Some(json!({"method": method})),
        ),
        CallError::InvalidParams(e) => {
            let problem = match &e.problem {
                Problem::WrongType => "wrong-type",
                Problem::Missing => "missing",
                Problem::Unexpected { .. } => "unexpected",
            };
            let mut data = json!({"param": e.path, "problem": problem, "message": e.message()});
            if !e.expected.is_empty() {
                data["expected"] = Value::String(e.expected.clone());
            }
            (
                INVALID_PARAMS,
                format!("Invalid params: {}", e.message()),
                Some(data),
            )
        }
        CallError::Application { message, data } => (APPLICATION_ERROR, message, data),
        CallError::Coded {
            code,
            message,
            data,
        } => (code, message, data),
        CallError::Guest(e) => {
            let (code, kind) = match e.kind {
                GuestErrorKind::Trap => (GUEST_TRAP, "trap"),
                GuestErrorKind::Timeout => (GUEST_TIMEOUT, "timeout"),
                GuestErrorKind::Memory => (GUEST_MEMORY, "memory"),
                GuestErrorKind::Host => (INTERNAL_ERROR, "host"),
            };
            (
                code,
                e.to_string(),
                Some(json!({"kind": kind, "stderr": e.stderr})),
            )
        }
        CallError::Internal(message) => {
            (INTERNAL_ERROR, format!("Internal error: {message}"), None)
        }
    }
}
