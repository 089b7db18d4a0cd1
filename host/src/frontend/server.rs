//! The frontend's HTTP server:
//!
//! - `POST /api`: the JSON-RPC 2.0 API ([`super::api`]);
//! - `POST /callback/decrementUserCredit.php` and `POST /callback/terminateService.php`: the
//!   managers' callbacks at the original's paths, form-encoded in, `{"error": false}` or
//!   `{"error": true, "msg": ...}` out, authenticated by the service's secret as a bearer
//!   token (never by the caller's address, as the original did);
//! - `GET /code/...`: what a manager node on this machine fetches as it boots;
//! - `GET` anything else: the dashboard's files ([`super::web`]).

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{AUTHORIZATION, CACHE_CONTROL, CONTENT_TYPE, HeaderValue};
use hyper::{Method, Request, Response, StatusCode};
use serde_json::Value;

use super::services::{Frontend, callback_reply};
use super::{FrontendOptions, api, web};

use crate::rpc::HttpResponse;

/// The largest request body the frontend reads.
const MAX_BODY: usize = 1 << 20;

/// Serves the frontend until SIGINT or SIGTERM. Prints `paasm frontend listening on
/// http://ADDR` on stdout once it serves. Managers keep running when the frontend stops: a
/// frontend started again on the same database and VAR directory takes them over.
pub async fn run(options: FrontendOptions) -> Result<()> {
    let addr = crate::rpc::listen_addr(&options.listen).await?;
    let shutdown = crate::service::agent::shutdown_signal()?;
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("cannot listen on {addr}"))?;
    let local = listener.local_addr()?;
    let url = match &options.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None if local.ip().is_unspecified() => format!("http://127.0.0.1:{}", local.port()),
        None => format!("http://{local}"),
    };
    let frontend = Frontend::open(options, url.clone()).await?;
    tracing::info!(%local, %url, database = frontend.store.backend(), "frontend listening");
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "paasm frontend listening on http://{local}")?;
        stdout.flush()?;
    }
    // Shared: the frontend's clouds are synchronous drivers that block in place.
    crate::rpc::serve_http(
        listener,
        None,
        crate::rpc::Threads::Shared,
        shutdown,
        move |req, _peer| {
            let fe = frontend.clone();
            async move { route(&fe, req).await }
        },
    )
    .await;
    tracing::info!("frontend stopped; its managers keep running");
    Ok(())
}

async fn route(fe: &Arc<Frontend>, req: Request<Incoming>) -> HttpResponse {
    let path = req.uri().path().to_string();
    let method = req.method().clone();
    let authorization = req
        .headers()
        .get(AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string);
    let token = api::bearer(authorization.as_deref()).map(str::to_string);
    match (&method, path.as_str()) {
        (&Method::POST, "/api") => {
            let body = match read_body(req).await {
                Ok(body) => body,
                Err(response) => return response,
            };
            let reply = api::handle(fe, token.as_deref(), &body).await;
            json(StatusCode::OK, &reply)
        }
        (&Method::POST, "/callback/decrementUserCredit.php" | "/callback/terminateService.php") => {
            let body = match read_body(req).await {
                Ok(body) => body,
                Err(response) => return response,
            };
            let form: BTreeMap<String, String> = form_urlencoded::parse(&body)
                .map(|(k, v)| (k.into_owned(), v.into_owned()))
                .collect();
            let result = if path.contains("decrement") {
                fe.credit_callback(&form, token.as_deref()).await
            } else {
                fe.terminate_callback(&form, token.as_deref()).await
            };
            json(StatusCode::OK, &callback_reply(&result))
        }
        (&Method::GET, _) if path.starts_with("/code/") => {
            match fe.code_file(&path["/code/".len()..]) {
                Some(text) => {
                    let mut response = Response::new(Full::new(Bytes::from(text)));
                    response.headers_mut().insert(
                        CONTENT_TYPE,
                        HeaderValue::from_static("text/plain; charset=utf-8"),
                    );
                    response
                }
                None => text(StatusCode::NOT_FOUND, &format!("not found: {path}")),
            }
        }
        (&Method::GET | &Method::HEAD, _) => match web::asset(&path) {
            Some((content_type, bytes)) => {
                let mut response = Response::new(Full::new(Bytes::from_static(bytes)));
                let headers = response.headers_mut();
                headers.insert(CONTENT_TYPE, HeaderValue::from_static(content_type));
                headers.insert(CACHE_CONTROL, HeaderValue::from_static("no-cache"));
                headers.insert(
                    "content-security-policy",
                    HeaderValue::from_static(
                        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'",
                    ),
                );
                headers.insert(
                    "x-content-type-options",
                    HeaderValue::from_static("nosniff"),
                );
                response
            }
            None => text(StatusCode::NOT_FOUND, &format!("not found: {path}")),
        },
        _ => text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("{method} {path} is not served: the API is POST /api"),
        ),
    }
}

async fn read_body(req: Request<Incoming>) -> Result<Bytes, HttpResponse> {
    match Limited::new(req.into_body(), MAX_BODY).collect().await {
        Ok(body) => Ok(body.to_bytes()),
        Err(e) => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("cannot read the request body (at most {MAX_BODY} bytes): {e}"),
        )),
    }
}

fn json(status: StatusCode, value: &Value) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(value.to_string())));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

fn text(status: StatusCode, message: &str) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(format!("{message}\n"))));
    *response.status_mut() = status;
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    response
}
