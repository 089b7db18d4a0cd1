//! The native baseline: the least a hyper + tokio JSON-RPC 2.0 server does to answer
//! `get_helloworld`, with no WebAssembly in the path.
//!
//! It runs as its own process (`xtask native-server`, multi-threaded tokio runtime) so it does
//! not share a runtime with the load generator, binds 127.0.0.1:0 and prints
//! `native-server listening on http://ADDR`.

use std::convert::Infallible;
use std::io::Write;
use std::time::Duration;

use anyhow::{Context, Result};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use serde::Deserialize;
use serde_json::{Value, json};
use tokio::net::TcpListener;

/// What the server prints, followed by `http://ADDR`, once it accepts connections.
pub const READY_PREFIX: &str = "native-server listening on ";

/// Serves until killed.
pub fn serve() -> Result<()> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?;
    runtime.block_on(accept_loop())
}

async fn accept_loop() -> Result<()> {
    let listener = TcpListener::bind("127.0.0.1:0")
        .await
        .context("cannot bind 127.0.0.1:0")?;
    let addr = listener
        .local_addr()
        .context("cannot read the bound address")?;
    {
        let mut stdout = std::io::stdout().lock();
        writeln!(stdout, "{READY_PREFIX}http://{addr}").context("cannot write to stdout")?;
        stdout.flush().context("cannot flush stdout")?;
    }
    loop {
        let stream = match listener.accept().await {
            Ok((stream, _)) => stream,
            Err(err) => {
                // Out of file descriptors and the like: back off instead of spinning.
                eprintln!("native-server: accept failed: {err}");
                tokio::time::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        let _ = stream.set_nodelay(true);
        tokio::spawn(async move {
            // A client that goes away mid-request is not the server's problem.
            let _ = http1::Builder::new()
                .serve_connection(TokioIo::new(stream), service_fn(handle))
                .await;
        });
    }
}

#[derive(Deserialize)]
struct Call {
    method: String,
    #[serde(default)]
    id: Value,
}

async fn handle(request: Request<Incoming>) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return Ok(reply(StatusCode::BAD_REQUEST, Bytes::new())),
    };
    let answer = match serde_json::from_slice::<Call>(&body) {
        Ok(call) if call.method == "get_helloworld" => {
            json!({"jsonrpc": "2.0", "result": {"result": "helloworld"}, "id": call.id})
        }
        Ok(call) => json!({
            "jsonrpc": "2.0",
            "error": {"code": -32601, "message": "method not found"},
            "id": call.id,
        }),
        Err(_) => json!({
            "jsonrpc": "2.0",
            "error": {"code": -32700, "message": "parse error"},
            "id": null,
        }),
    };
    let bytes = serde_json::to_vec(&answer).expect("a json value always serializes");
    Ok(reply(StatusCode::OK, Bytes::from(bytes)))
}

fn reply(status: StatusCode, body: Bytes) -> Response<Full<Bytes>> {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
