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

/// Calls `method` on the server at `addr` in the ConPaaS dialect and returns its result.
///
/// Only GET and POST are supported here; an upload needs files, which this client does not send.
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
        Verb::Upload => return Err(transport("uploads are not supported by this client".into())),
    }
    .map_err(|e| transport(e.to_string()))?;
    let exchange = async {
        let stream = tokio::net::TcpStream::connect(addr)
            .await
            .map_err(|e| transport(format!("cannot connect: {e}")))?;
        let (mut sender, conn) =
            hyper::client::conn::http1::handshake(hyper_util::rt::TokioIo::new(stream))
                .await
                .map_err(|e| transport(format!("handshake failed: {e}")))?;
        tokio::spawn(conn);
        let mut request = request;
        request.headers_mut().insert(
            hyper::header::HOST,
            addr.to_string()
                .parse()
                .map_err(|_| transport("bad host header".into()))?,
        );
        let response = sender
            .send_request(request)
            .await
            .map_err(|e| transport(format!("request failed: {e}")))?;
        let status = response.status();
        let body = response
            .into_body()
            .collect()
            .await
            .map_err(|e| transport(format!("reply failed: {e}")))?
            .to_bytes();
        if !status.is_success() {
            let text = String::from_utf8_lossy(&body);
            return Err(transport(format!("HTTP {status}: {}", text.trim())));
        }
        let reply: Value = serde_json::from_slice(&body)
            .map_err(|e| transport(format!("reply is not JSON: {e}")))?;
        match reply.get("error") {
            None | Some(Value::Null) | Some(Value::Bool(false)) => {
                Ok(reply.get("result").cloned().unwrap_or(Value::Null))
            }
            Some(Value::String(message)) => Err(ClientError::Remote(message.clone())),
            Some(other) => Err(ClientError::Remote(other.to_string())),
        }
    };
    tokio::time::timeout(timeout, exchange)
        .await
        .map_err(|_| transport(format!("no reply within {timeout:?}")))?
}
