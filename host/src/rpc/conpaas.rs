//! The original ConPaaS dialect.
//!
//! GET carries `method`, `id` and optional `params` (URL-encoded JSON) in the query string,
//! repeated keys last-wins, and the id is echoed as the string it arrived as. POST carries
//! `{method, params, id}` (extra keys ignored) and the id is echoed with its JSON type. A
//! multipart POST is an UPLOAD: the field `method` selects the method, every other field is a
//! parameter, and the id is `1`. Replies are `{"result": R, "error": null, "id": ID}` or
//! `{"error": "msg", "id": ID}` with no `result` key, always HTTP 200; protocol errors are the
//! original plain-text 400 and 404 bodies. Every reply closes the connection.
//!
//! Unlike the original, a request without an id gets a 400 reply instead of a dropped
//! connection.

use bytes::Bytes;
use hyper::StatusCode;
use serde_json::{Map, Value, json};

use super::server::{HttpResponse, json as json_response, text};
use super::{CallError, Dispatcher, FormField, Params, Verb};

/// `GET /?method=M&id=I[&params=JSON]`.
pub(super) async fn get(dispatcher: &Dispatcher, query: &str) -> HttpResponse {
    let (mut method, mut id, mut params) = (None, None, None);
    for (key, value) in form_urlencoded::parse(query.as_bytes()) {
        match key.as_ref() {
            "method" => method = Some(value.into_owned()),
            "id" => id = Some(value.into_owned()),
            "params" => params = Some(value.into_owned()),
            _ => {}
        }
    }
    let Some(method) = method else {
        return text(StatusCode::BAD_REQUEST, "Did not specify method");
    };
    let Some(id) = id else {
        return text(StatusCode::BAD_REQUEST, "Did not specify id");
    };
    let params = match params {
        None => Value::Null,
        Some(text_params) => match serde_json::from_str(&text_params) {
            Ok(value) => value,
            Err(e) => {
                return text(
                    StatusCode::BAD_REQUEST,
                    &format!("params is not valid JSON: {e}"),
                );
            }
        },
    };
    call(dispatcher, Verb::Get, &method, params, Value::String(id)).await
}

/// A POSTed JSON object without `"jsonrpc": "2.0"`.
pub(super) async fn post(dispatcher: &Dispatcher, body: Value) -> HttpResponse {
    let Value::Object(mut request) = body else {
        return text(
            StatusCode::BAD_REQUEST,
            "request body must be a JSON object {\"method\": ..., \"params\": ..., \"id\": ...}",
        );
    };
    let method = match request.remove("method") {
        None | Some(Value::Null) => {
            return text(StatusCode::BAD_REQUEST, "Did not specify method");
        }
        Some(Value::String(method)) => method,
        Some(_) => return text(StatusCode::BAD_REQUEST, "method must be a string"),
    };
    let Some(id) = request.remove("id") else {
        return text(StatusCode::BAD_REQUEST, "Did not specify id");
    };
    let params = request.remove("params").unwrap_or(Value::Null);
    call(dispatcher, Verb::Post, &method, params, id).await
}

/// A multipart POST: an UPLOAD call.
pub(super) async fn upload(
    dispatcher: &Dispatcher,
    content_type: &str,
    body: Bytes,
) -> HttpResponse {
    let fields = match parse_multipart(content_type, body).await {
        Ok(fields) => fields,
        Err(message) => return text(StatusCode::BAD_REQUEST, &message),
    };
    let (method, fields): (Vec<_>, Vec<_>) = fields.into_iter().partition(|f| f.name == "method");
    let Some(method) = method.last() else {
        return text(StatusCode::BAD_REQUEST, "Did not specify method");
    };
    let method = String::from_utf8_lossy(&method.data).into_owned();
    let params = if fields.is_empty() {
        Params::None
    } else {
        Params::Form(fields)
    };
    respond(
        dispatcher.call(Some(Verb::Upload), &method, params).await,
        json!(1),
    )
}

async fn call(
    dispatcher: &Dispatcher,
    verb: Verb,
    method: &str,
    params: Value,
    id: Value,
) -> HttpResponse {
    let params = match params {
        Value::Null => Params::None,
        Value::Array(items) if items.is_empty() => Params::None,
        Value::Object(map) => Params::Named(map),
        _ => {
            return envelope_error("ERROR: params must be a JSON object".into(), id);
        }
    };
    respond(dispatcher.call(Some(verb), method, params).await, id)
}

fn respond(outcome: Result<Value, CallError>, id: Value) -> HttpResponse {
    match outcome {
        Ok(result) => json_response(
            StatusCode::OK,
            &json!({"result": result, "error": null, "id": id}),
            true,
        ),
        Err(CallError::MethodNotFound) => text(StatusCode::NOT_FOUND, "method not found"),
        Err(CallError::InvalidParams(e)) => envelope_error(format!("ERROR: {}", e.message()), id),
        Err(CallError::Application { message, .. }) => envelope_error(message, id),
        Err(CallError::Coded { message, .. }) => envelope_error(message, id),
        Err(CallError::Guest(e)) => envelope_error(format!("ERROR: {e}"), id),
        Err(CallError::Internal(message)) => envelope_error(format!("ERROR: {message}"), id),
    }
}

fn envelope_error(message: String, id: Value) -> HttpResponse {
    let mut body = Map::new();
    body.insert("error".into(), Value::String(message));
    body.insert("id".into(), id);
    json_response(StatusCode::OK, &Value::Object(body), true)
}

/// Parses a multipart body. The boundary is taken from the header as sent: the original
/// client's is unquoted and contains `$`, which strict parsers refuse.
async fn parse_multipart(content_type: &str, body: Bytes) -> Result<Vec<FormField>, String> {
    let boundary = content_type
        .split(';')
        .skip(1)
        .filter_map(|p| p.trim().split_once('='))
        .find(|(k, _)| k.trim().eq_ignore_ascii_case("boundary"))
        .map(|(_, v)| v.trim().trim_matches('"').to_string())
        .filter(|b| !b.is_empty())
        .ok_or_else(|| "multipart/form-data without a boundary".to_string())?;
    let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(body) });
    let mut multipart = multer::Multipart::new(stream, boundary);
    let mut fields = Vec::new();
    loop {
        match multipart.next_field().await {
            Ok(Some(field)) => {
                let name = field.name().unwrap_or_default().to_string();
                let filename = field.file_name().map(str::to_string);
                let data = field
                    .bytes()
                    .await
                    .map_err(|e| format!("invalid multipart body: {e}"))?;
                fields.push(FormField {
                    name,
                    filename,
                    data,
                });
            }
            Ok(None) => break,
            Err(e) => return Err(format!("invalid multipart body: {e}")),
        }
    }
    Ok(fields)
}
