//! The hyper 1 server and the HTTP-level rules shared by both dialects.
//!
//! As in the original server: only path `/`; a `Content-Type` header is required even on GET
//! (missing or unsupported: 415); GET and POST only (else 405); JSON types
//! `application/json`, `application/json-rpc` and `application/jsonrequest`; `multipart/
//! form-data` is an UPLOAD. A JSON body with `"jsonrpc": "2.0"` (or a JSON array, a batch) is
//! JSON-RPC 2.0 on a kept-alive connection; everything else is the ConPaaS dialect, answered
//! with `Connection: close` because the original clients read to end of stream.
//!
//! Connections are served on the caller's runtime or, for the agent, on serving threads of the
//! server's own (see [`Threads`]).

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::num::NonZeroUsize;
use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::header::{ALLOW, CONNECTION, CONTENT_TYPE, HeaderValue};
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Method, Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use hyper_util::server::graceful::{GracefulShutdown, Watcher};
use serde_json::Value;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::{mpsc, oneshot};
use tokio_rustls::TlsAcceptor;

use super::{CodeFile, Dispatcher, conpaas, jsonrpc2};

/// The largest JSON request body accepted.
const MAX_JSON_BODY: usize = 16 << 20;
/// The largest multipart (UPLOAD) request body accepted.
const MAX_UPLOAD_BODY: usize = 64 << 20;
/// How long a client may take to complete the TLS handshake.
const TLS_HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long in-flight requests may run after shutdown was asked for.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(5);

const JSON_TYPES: [&str; 3] = [
    "application/json",
    "application/json-rpc",
    "application/jsonrequest",
];

pub type HttpResponse = Response<Full<Bytes>>;

/// A plain-text response (the original server's error pages), connection closed.
pub(super) fn text(status: StatusCode, body: &str) -> HttpResponse {
    let mut response = Response::new(Full::new(Bytes::from(format!("{body}\n"))));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(
        CONTENT_TYPE,
        HeaderValue::from_static("text/plain; charset=utf-8"),
    );
    headers.insert(CONNECTION, HeaderValue::from_static("close"));
    response
}

/// A JSON response; `close` ends the connection after it.
pub(super) fn json(status: StatusCode, body: &Value, close: bool) -> HttpResponse {
    let bytes = serde_json::to_vec(body).unwrap_or_default();
    let mut response = Response::new(Full::new(Bytes::from(bytes)));
    *response.status_mut() = status;
    let headers = response.headers_mut();
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    if close {
        headers.insert(CONNECTION, HeaderValue::from_static("close"));
    }
    response
}

/// The address to listen on from `HOST:PORT` (a name is resolved), with a message naming
/// the expected form.
pub async fn listen_addr(listen: &str) -> anyhow::Result<SocketAddr> {
    use anyhow::Context;
    tokio::net::lookup_host(listen)
        .await
        .with_context(|| format!("invalid listen address {listen:?}: expected HOST:PORT"))?
        .next()
        .with_context(|| format!("listen address {listen:?} resolves to nothing"))
}

/// Where a server's connections are served.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub enum Threads {
    /// On the runtime that called [`serve_http`], beside everything else it runs. The only
    /// choice for a handler that blocks in place (`tokio::task::block_in_place`), which a
    /// single-threaded runtime cannot do.
    #[default]
    Shared,
    /// On this many threads of the server's own, each a single-threaded runtime that serves
    /// every request of the connections handed to it. The main runtime only accepts; a
    /// request then never wakes another thread, which under load is most of what a
    /// work-stealing runtime spends beside the handler.
    Dedicated(NonZeroUsize),
}

impl Threads {
    /// Serving threads of the server's own, one per CPU this process may use.
    pub fn per_cpu() -> Self {
        Threads::Dedicated(std::thread::available_parallelism().unwrap_or(NonZeroUsize::MIN))
    }
}

/// Serves `dispatcher` on `listener` (over TLS when `tls` is given, on `threads`) until
/// `shutdown` completes, then lets in-flight requests finish for a few seconds.
pub async fn serve(
    listener: TcpListener,
    dispatcher: Arc<Dispatcher>,
    tls: Option<Arc<rustls::ServerConfig>>,
    threads: Threads,
    shutdown: impl Future<Output = ()>,
) {
    serve_http(listener, tls, threads, shutdown, move |req, peer| {
        let dispatcher = dispatcher.clone();
        async move { handle(&dispatcher, req, peer).await }
    })
    .await
}

/// The HTTP/1.1 server under every paasm server: accepts on `listener` (over TLS when `tls`
/// is given), answers each request with `handler` on `threads`, until `shutdown` completes;
/// then lets in-flight requests finish for a few seconds.
pub async fn serve_http<H, F>(
    listener: TcpListener,
    tls: Option<Arc<rustls::ServerConfig>>,
    threads: Threads,
    shutdown: impl Future<Output = ()>,
    handler: H,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let acceptor = tls.map(TlsAcceptor::from);
    if let Threads::Dedicated(count) = threads {
        match ServingThreads::start(count, acceptor.clone(), handler.clone()) {
            Ok(pool) => {
                accept_loop(listener, shutdown, |stream, peer| pool.hand(stream, peer)).await;
                pool.stop().await;
                return;
            }
            Err(e) => tracing::warn!(
                "cannot start {count} serving threads: {e}; serving on the main runtime instead"
            ),
        }
    }
    let graceful = GracefulShutdown::new();
    accept_loop(listener, shutdown, |stream, peer| {
        spawn_connection(
            stream,
            peer,
            acceptor.clone(),
            handler.clone(),
            graceful.watcher(),
            (),
        );
    })
    .await;
    drain(graceful).await;
}

/// Accepts connections on `listener` and passes each to `dispatch` until `shutdown`
/// completes; then closes the listener, so no connection waits in its backlog unserved.
async fn accept_loop(
    listener: TcpListener,
    shutdown: impl Future<Output = ()>,
    mut dispatch: impl FnMut(TcpStream, SocketAddr),
) {
    tokio::pin!(shutdown);
    loop {
        tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok((stream, peer)) => {
                    let _ = stream.set_nodelay(true);
                    dispatch(stream, peer);
                }
                Err(e) => {
                    // Out of file descriptors and the like: back off instead of spinning.
                    tracing::warn!("accept failed: {e}");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                }
            },
            () = &mut shutdown => break,
        }
    }
}

/// Lets the connections `graceful` watches finish their requests, for [`SHUTDOWN_GRACE`]
/// at most.
async fn drain(graceful: GracefulShutdown) {
    tokio::select! {
        () = graceful.shutdown() => {}
        () = tokio::time::sleep(SHUTDOWN_GRACE) => {
            tracing::warn!("requests still running after {SHUTDOWN_GRACE:?}; stopping anyway");
        }
    }
}

/// A connection handed to a serving thread, with the guard that counts it there.
type Handed = (std::net::TcpStream, SocketAddr, Held);

/// Counts one live connection on a serving thread until dropped.
struct Held(Arc<AtomicUsize>);

impl Drop for Held {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

/// The threads of [`Threads::Dedicated`]: each runs a single-threaded runtime and serves,
/// start to end, the connections handed to it; a new connection goes to the thread with the
/// fewest live ones.
struct ServingThreads {
    threads: Vec<ServingThread>,
}

struct ServingThread {
    connections: mpsc::UnboundedSender<Handed>,
    live: Arc<AtomicUsize>,
    stopped: oneshot::Receiver<()>,
}

impl ServingThreads {
    fn start<H, F>(
        count: NonZeroUsize,
        acceptor: Option<TlsAcceptor>,
        handler: H,
    ) -> std::io::Result<Self>
    where
        H: Fn(Request<Incoming>, SocketAddr) -> F + Clone + Send + Sync + 'static,
        F: Future<Output = HttpResponse> + Send + 'static,
    {
        let mut threads = Vec::with_capacity(count.get());
        for index in 0..count.get() {
            let runtime = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()?;
            let (connections, mut handed) = mpsc::unbounded_channel::<Handed>();
            let (stop, stopped) = oneshot::channel();
            let (acceptor, handler) = (acceptor.clone(), handler.clone());
            std::thread::Builder::new()
                .name(format!("paasm-serve-{index}"))
                .spawn(move || {
                    runtime.block_on(async move {
                        let graceful = GracefulShutdown::new();
                        while let Some((stream, peer, held)) = handed.recv().await {
                            match TcpStream::from_std(stream) {
                                Ok(stream) => spawn_connection(
                                    stream,
                                    peer,
                                    acceptor.clone(),
                                    handler.clone(),
                                    graceful.watcher(),
                                    held,
                                ),
                                Err(e) => tracing::warn!(%peer, "cannot serve connection: {e}"),
                            }
                        }
                        drain(graceful).await;
                    });
                    let _ = stop.send(());
                })?;
            threads.push(ServingThread {
                connections,
                live: Arc::new(AtomicUsize::new(0)),
                stopped,
            });
        }
        Ok(ServingThreads { threads })
    }

    /// Hands `stream` to the thread serving the fewest connections.
    fn hand(&self, stream: TcpStream, peer: SocketAddr) {
        let Some(thread) = self
            .threads
            .iter()
            .min_by_key(|t| t.live.load(Ordering::Relaxed))
        else {
            return;
        };
        // Leaves the main runtime's reactor: the serving thread registers it with its own.
        let stream = match stream.into_std() {
            Ok(stream) => stream,
            Err(e) => {
                tracing::warn!(%peer, "cannot hand connection to a serving thread: {e}");
                return;
            }
        };
        thread.live.fetch_add(1, Ordering::Relaxed);
        let held = Held(thread.live.clone());
        if thread.connections.send((stream, peer, held)).is_err() {
            tracing::warn!(%peer, "serving thread has stopped; connection dropped");
        }
    }

    /// Closes every thread's queue and waits while each lets its requests finish.
    async fn stop(self) {
        let mut stopped = Vec::with_capacity(self.threads.len());
        for thread in self.threads {
            drop(thread.connections);
            stopped.push(thread.stopped);
        }
        for thread in stopped {
            let _ = thread.await;
        }
    }
}

/// Serves HTTP/1.1 on one accepted connection (after the TLS handshake when `acceptor` is
/// given), holding `held` until the connection ends. When a reply asks to close the
/// connection, hyper shuts the stream down, which for TLS sends `close_notify` first.
fn spawn_connection<H, F>(
    stream: TcpStream,
    peer: SocketAddr,
    acceptor: Option<TlsAcceptor>,
    handler: H,
    watcher: Watcher,
    held: impl Send + 'static,
) where
    H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    tokio::spawn(async move {
        let _held = held;
        let Some(acceptor) = acceptor else {
            return serve_connection(stream, peer, handler, watcher).await;
        };
        match tokio::time::timeout(TLS_HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
            Ok(Ok(stream)) => serve_connection(stream, peer, handler, watcher).await,
            Ok(Err(e)) => tracing::info!(%peer, "TLS handshake failed: {e}"),
            Err(_) => tracing::info!(%peer, "TLS handshake timed out"),
        }
    });
}

async fn serve_connection<I, H, F>(io: I, peer: SocketAddr, handler: H, watcher: Watcher)
where
    I: tokio::io::AsyncRead + tokio::io::AsyncWrite + Unpin + Send + 'static,
    H: Fn(Request<Incoming>, SocketAddr) -> F + Send + Sync + 'static,
    F: Future<Output = HttpResponse> + Send + 'static,
{
    let service = service_fn(move |req| {
        let response = handler(req, peer);
        async move { Ok::<_, Infallible>(response.await) }
    });
    let conn = http1::Builder::new()
        .keep_alive(true)
        .serve_connection(TokioIo::new(io), service);
    if let Err(e) = watcher.watch(conn).await {
        tracing::debug!(%peer, "connection ended with an error: {e}");
    }
}

async fn handle(dispatcher: &Dispatcher, req: Request<Incoming>, peer: SocketAddr) -> HttpResponse {
    // Boxed: the routing future holds every dialect's state and would otherwise be moved,
    // whole, into hyper's dispatcher for every request.
    let response = Box::pin(route(dispatcher, req)).await;
    tracing::debug!(%peer, status = response.status().as_u16(), "request served");
    response
}

async fn route(dispatcher: &Dispatcher, req: Request<Incoming>) -> HttpResponse {
    if let Some(name) = req.uri().path().strip_prefix("/code/")
        && let Some(file) = dispatcher.file(name)
    {
        return code_file(name, file, req.method()).await;
    }
    if req.uri().path() != "/" {
        return text(StatusCode::NOT_FOUND, "not found: only path / is served");
    }
    let method = req.method().clone();
    if method != Method::GET && method != Method::POST {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {method} not allowed: use GET or POST"),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, POST"));
        return response;
    }
    let Some(content_type) = req
        .headers()
        .get(CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
    else {
        return text(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "missing Content-Type header: send application/json (or multipart/form-data to upload)",
        );
    };
    let mime = content_type
        .split(';')
        .next()
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase();
    let is_json = JSON_TYPES.contains(&mime.as_str());
    if method == Method::GET {
        if !is_json {
            return unsupported(&mime);
        }
        let query = req.uri().query().unwrap_or_default().to_string();
        return conpaas::get(dispatcher, &query).await;
    }
    if is_json {
        let body = match read_body(req.into_body(), MAX_JSON_BODY).await {
            Ok(body) => body,
            Err(response) => return response,
        };
        return post_json(dispatcher, &body).await;
    }
    if mime == "multipart/form-data" {
        let body = match read_body(req.into_body(), MAX_UPLOAD_BODY).await {
            Ok(body) => body,
            Err(response) => return response,
        };
        return conpaas::upload(dispatcher, &content_type, body).await;
    }
    unsupported(&mime)
}

/// A file under `/code/`: GET (or HEAD) only, the bytes as they are.
async fn code_file(name: &str, file: &CodeFile, method: &Method) -> HttpResponse {
    if method != Method::GET && method != Method::HEAD {
        let mut response = text(
            StatusCode::METHOD_NOT_ALLOWED,
            &format!("method {method} not allowed for /code/{name}: use GET"),
        );
        response
            .headers_mut()
            .insert(ALLOW, HeaderValue::from_static("GET, HEAD"));
        return response;
    }
    let bytes = match file {
        CodeFile::Bytes(bytes) => bytes.clone(),
        CodeFile::Path(path) => match tokio::task::spawn_blocking({
            let path = path.clone();
            move || std::fs::read(path)
        })
        .await
        .map_err(std::io::Error::other)
        .and_then(|r| r)
        {
            Ok(bytes) => Bytes::from(bytes),
            Err(e) => {
                tracing::warn!("cannot read {}: {e}", path.display());
                return text(
                    StatusCode::INTERNAL_SERVER_ERROR,
                    &format!("cannot read /code/{name}"),
                );
            }
        },
    };
    let mut response = Response::new(Full::new(bytes));
    response.headers_mut().insert(
        CONTENT_TYPE,
        HeaderValue::from_static("application/octet-stream"),
    );
    response
}

fn unsupported(mime: &str) -> HttpResponse {
    text(
        StatusCode::UNSUPPORTED_MEDIA_TYPE,
        &format!(
            "unsupported Content-Type {mime:?}: send application/json (or multipart/form-data to upload)"
        ),
    )
}

async fn read_body(body: Incoming, limit: usize) -> Result<Bytes, HttpResponse> {
    match Limited::new(body, limit).collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) if e.is::<http_body_util::LengthLimitError>() => Err(text(
            StatusCode::PAYLOAD_TOO_LARGE,
            &format!("request body larger than {limit} bytes"),
        )),
        Err(e) => Err(text(
            StatusCode::BAD_REQUEST,
            &format!("cannot read request body: {e}"),
        )),
    }
}

/// A POSTed JSON body: JSON-RPC 2.0 if it says so (or is a batch), else the ConPaaS dialect.
async fn post_json(dispatcher: &Dispatcher, body: &[u8]) -> HttpResponse {
    let value: Value = match serde_json::from_slice(body) {
        Ok(value) => value,
        Err(e) => {
            // Without a parsed body the dialect is a guess: a body that mentions "jsonrpc"
            // gets the JSON-RPC 2.0 parse error, anything else the original's plain 400.
            return if body.windows(9).any(|w| w == b"\"jsonrpc\"") {
                jsonrpc2::parse_error(&e.to_string())
            } else {
                text(StatusCode::BAD_REQUEST, &format!("invalid JSON body: {e}"))
            };
        }
    };
    let is_jsonrpc2 = match &value {
        Value::Array(_) => true,
        Value::Object(obj) => obj.get("jsonrpc").is_some_and(|v| v == "2.0"),
        _ => false,
    };
    if is_jsonrpc2 {
        jsonrpc2::handle(dispatcher, value).await
    } else {
        conpaas::post(dispatcher, value).await
    }
}
