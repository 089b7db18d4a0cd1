//! A client for the ConPaaS dialect: how a manager calls its agents (and the controller probes
//! them), sending exactly what the original clients sent.
//!
//! GET methods carry `method`, `id` and (when there are any) URL-encoded JSON `params` in the
//! query; POST methods a JSON body. Replies are read as the original clients read them: HTTP
//! 200 with `"error": null` is a result, a truthy `error` is the agent's error message, anything
//! else is a protocol failure.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use serde_json::{Map, Value, json};

use super::Verb;

/// Why a call to a remote method produced no result.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ClientError {
    /// The remote method ran and answered an error.
    #[error("{0}")]
    Remote(String),
    /// No usable reply: connection refused, timeout, non-200 status, not JSON.
    #[error("{addr}: {message}")]
    Transport { addr: SocketAddr, message: String },
}

/// A file sent to an UPLOAD method: its form field, file name and content.
#[derive(Debug, Clone)]
pub struct UploadFile {
    pub field: String,
    pub filename: String,
    pub data: Bytes,
}

/// Calls the UPLOAD method `method` as the original clients did: a multipart form with the
/// field `method`, each parameter as a text field (strings as they are, other values as JSON)
/// and each file as a file field.
pub async fn upload(
    addr: SocketAddr,
    method: &str,
    params: &Map<String, Value>,
    files: Vec<UploadFile>,
    timeout: Duration,
) -> Result<Value, ClientError> {
    use futures_util::StreamExt;
    use mpart_async::client::{ByteStream, MultipartRequest};
    let mut form: MultipartRequest<ByteStream> = MultipartRequest::default();
    form.add_field("method", method);
    for (name, value) in params {
        let text = match value {
            Value::String(s) => s.clone(),
            other => other.to_string(),
        };
        form.add_field(name.as_str(), text.as_str());
    }
    for file in &files {
        form.add_stream(
            file.field.as_str(),
            file.filename.as_str(),
            "application/octet-stream",
            ByteStream::new(&file.data),
        );
    }
    let content_type = format!("multipart/form-data; boundary={}", form.get_boundary());
    let mut body = Vec::new();
    while let Some(chunk) = form.next().await {
        match chunk {
            Ok(bytes) => body.extend_from_slice(&bytes),
            Err(never) => match never {},
        }
    }
    let request = hyper::Request::post("/")
        .header("Content-Type", content_type)
        .body(Full::new(Bytes::from(body)))
        .map_err(|e| ClientError::Transport {
            addr,
            message: e.to_string(),
        })?;
    send(addr, request, timeout).await
}

/// Calls `method` on the server at `addr` in the ConPaaS dialect and returns its result.
///
/// GET and POST; uploads go through [`upload`].
pub async fn call(
    addr: SocketAddr,
    verb: Verb,
    method: &str,
    params: &Map<String, Value>,
    timeout: Duration,
) -> Result<Value, ClientError> {
    let transport = |message: String| ClientError::Transport { addr, message };
    let request = match verb {
        Verb::Get => {
            let mut query = form_urlencoded::Serializer::new(String::new());
            query.append_pair("method", method).append_pair("id", "1");
            if !params.is_empty() {
                query.append_pair("params", &Value::Object(params.clone()).to_string());
            }
            hyper::Request::get(format!("/?{}", query.finish()))
                .header("Content-Type", "application/json")
                .body(Full::new(Bytes::new()))
        }
        Verb::Post => {
            let body = json!({"method": method, "params": params, "id": "1"}).to_string();
            hyper::Request::post("/")
                .header("Content-Type", "application/json")
                .body(Full::new(Bytes::from(body)))
        }
        Verb::Upload => return upload(addr, method, params, Vec::new(), timeout).await,
    }
    .map_err(|e| transport(e.to_string()))?;
    send(addr, request, timeout).await
}

/// One HTTP/1.1 exchange with `addr` within `timeout`: the reply's status and whole body. The
/// `Host` header is set to `addr` unless the request has one. Every client of paasm's servers
/// (this dialect, the frontend's CLI, the managers' callbacks) goes through here.
pub async fn exchange(
    addr: SocketAddr,
    mut request: hyper::Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<(hyper::StatusCode, Bytes), String> {
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| format!("cannot connect: {e}"))?;
        if !request.headers().contains_key(hyper::header::HOST) {
            let host = addr
                .to_string()
                .parse()
                .map_err(|_| "bad host header".to_string())?;
            request.headers_mut().insert(hyper::header::HOST, host);
        }
        send_over(stream, request).await
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| format!("no reply within {timeout:?}"))?
}

/// Sends `request` over an open connection (plain TCP or TLS) with HTTP/1.1 and reads the
/// whole reply: its status and body.
pub async fn send_over<T>(
    io: T,
    request: hyper::Request<Full<Bytes>>,
) -> Result<(hyper::StatusCode, Bytes), String>
where
    T: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
{
    let (mut sender, conn) =
        hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(io))
            .await
            .map_err(|e| format!("handshake failed: {e}"))?;
    tokio::spawn(conn);
    let response = sender
        .send_request(request)
        .await
        .map_err(|e| format!("request failed: {e}"))?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .map_err(|e| format!("reply failed: {e}"))?
        .to_bytes();
    Ok((status, body))
}

/// Sends one request and reads the reply as the original clients did.
async fn send(
    addr: SocketAddr,
    request: hyper::Request<Full<Bytes>>,
    timeout: Duration,
) -> Result<Value, ClientError> {
    let transport = |message: String| ClientError::Transport { addr, message };
    let (status, body) = exchange(addr, request, timeout).await.map_err(transport)?;
    if !status.is_success() {
        let text = String::from_utf8_lossy(&body);
        return Err(transport(format!("HTTP {status}: {}", text.trim())));
    }
    let reply: Value =
        serde_json::from_slice(&body).map_err(|e| transport(format!("reply is not JSON: {e}")))?;
    match reply.get("error") {
        None | Some(Value::Null) | Some(Value::Bool(false)) => {
            Ok(reply.get("result").cloned().unwrap_or(Value::Null))
        }
        Some(Value::String(message)) => Err(ClientError::Remote(message.clone())),
        Some(other) => Err(ClientError::Remote(other.to_string())),
    }
}
