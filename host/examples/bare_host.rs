//! The least an HTTP host can do around a fresh component instance per request: paasm's own
//! HTTP layer (`rpc::serve_http`, with serving threads as `paasm agent` has them), and for
//! every request a new wasmtime store and
//! instance of the component, one call of its `get-helloworld`, the store dropped, the returned
//! string put in a JSON-RPC 2.0 reply. No dispatch, no parameter conversion, no platform
//! imports, no state: the component must import nothing (the bench serves `bench-empty`).
//!
//! The engine is paasm's own (`Runtime::new`: the same pooling allocator settings, epoch
//! interruption and async support), so the difference between this server and `paasm agent`
//! serving the same component is what paasm's dispatch, conversions and platform cost. `cargo xtask bench` runs
//! it; by hand: `bare_host COMPONENT.wasm`, which prints `bare-host listening on http://ADDR`.

use std::io::Write;
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};
use paasm::engine::{Runtime, RuntimeOptions, exported_funcs};
use paasm::rpc::{HttpResponse, Threads};
use serde_json::{Value, json};
use wasmtime::Store;
use wasmtime::component::{Component, ComponentExportIndex, InstancePre, Linker, Val};

/// What the server prints, followed by `http://ADDR`, once it accepts connections.
const READY_PREFIX: &str = "bare-host listening on ";

/// Ticks (of paasm's epoch) a call may run before it yields to other requests.
const YIELD_TICKS: u64 = 1;

struct Host {
    runtime: Runtime,
    pre: InstancePre<()>,
    func: ComponentExportIndex,
}

fn main() -> Result<()> {
    let path = std::env::args()
        .nth(1)
        .context("usage: bare_host COMPONENT.wasm")?;
    let runtime = Runtime::new(&RuntimeOptions {
        cache_dir: None,
        ..RuntimeOptions::default()
    })?;
    let component = Component::from_file(runtime.engine(), &path)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("cannot compile {path}"))?;
    let func = exported_funcs(runtime.engine(), &component)
        .into_iter()
        .find(|f| f.name == "get-helloworld")
        .with_context(|| format!("{path} does not export get-helloworld"))?
        .index;
    let pre = Linker::<()>::new(runtime.engine())
        .instantiate_pre(&component)
        .map_err(anyhow::Error::from)
        .with_context(|| format!("{path} cannot be linked without imports"))?;
    let host = Arc::new(Host { runtime, pre, func });
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the tokio runtime")?
        .block_on(serve(host))
}

async fn serve(host: Arc<Host>) -> Result<()> {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
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
    let shutdown = std::future::pending();
    paasm::rpc::serve_http(
        listener,
        None,
        Threads::per_cpu(),
        shutdown,
        move |req, _| handle(host.clone(), req),
    )
    .await;
    Ok(())
}

async fn handle(host: Arc<Host>, request: Request<Incoming>) -> HttpResponse {
    let body = match request.into_body().collect().await {
        Ok(body) => body.to_bytes(),
        Err(_) => return reply(StatusCode::BAD_REQUEST, Bytes::new()),
    };
    let id = serde_json::from_slice::<Value>(&body)
        .ok()
        .and_then(|call| call.get("id").cloned())
        .unwrap_or(Value::Null);
    let answer = match call(&host).await {
        Ok(text) => json!({"jsonrpc": "2.0", "result": {"result": text}, "id": id}),
        Err(e) => json!({
            "jsonrpc": "2.0",
            "error": {"code": -32603, "message": format!("{e:#}")},
            "id": id,
        }),
    };
    let bytes = serde_json::to_vec(&answer).expect("a json value always serializes");
    reply(StatusCode::OK, Bytes::from(bytes))
}

/// One fresh store and instance, one call, the store dropped: the string the guest returned.
async fn call(host: &Host) -> Result<String> {
    let mut store = Store::new(host.runtime.engine(), ());
    // A store's deadline starts at epoch 0, long past: set it before the guest runs.
    store.set_epoch_deadline(YIELD_TICKS);
    store.epoch_deadline_async_yield_and_update(YIELD_TICKS);
    let instance = host.pre.instantiate_async(&mut store).await?;
    let func = instance
        .get_func(&mut store, host.func)
        .context("get-helloworld is not a function")?;
    let mut results = [Val::Bool(false)];
    func.call_async(&mut store, &[], &mut results).await?;
    // `result<hello, string>` where `record hello { result: string }`.
    match &results[0] {
        Val::Result(Ok(Some(hello))) => match hello.as_ref() {
            Val::Record(fields) => match fields.first() {
                Some((_, Val::String(text))) => Ok(text.clone()),
                _ => bail!("get-helloworld returned a record without a string"),
            },
            other => bail!("get-helloworld returned {other:?}"),
        },
        Val::Result(Err(Some(error))) => bail!("get-helloworld failed: {error:?}"),
        other => bail!("get-helloworld returned {other:?}"),
    }
}

fn reply(status: StatusCode, body: Bytes) -> HttpResponse {
    let mut response = Response::new(Full::new(body));
    *response.status_mut() = status;
    response
        .headers_mut()
        .insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}
