//! The closed-loop load generator: N keep-alive HTTP/1.1 connections, each sending one JSON-RPC
//! 2.0 `get_helloworld` at a time, plus one-off requests for preparing a server.

use std::net::SocketAddr;
use std::time::Duration;

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use hdrhistogram::Histogram;
use http_body_util::{BodyExt, Full};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::header::{CONTENT_TYPE, HOST};
use hyper::{Request, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::time::Instant;

use crate::process::cpu_time;

/// The request every connection sends.
pub const GET_HELLOWORLD: &str = r#"{"jsonrpc":"2.0","method":"get_helloworld","id":1}"#;

/// Largest latency the histograms hold (60 s, in microseconds).
const MAX_LATENCY_US: u64 = 60_000_000;

/// How one run of the generator is shaped.
#[derive(Clone, Copy, Debug)]
pub struct Load {
    pub addr: SocketAddr,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// The server process, whose CPU time is read at both ends of the measured window.
    pub server_pid: u32,
}

/// What one run measured. Only requests that completed inside the measured window count.
pub struct Outcome {
    pub ok: u64,
    pub errors: u64,
    /// Latency of successful requests, in microseconds.
    pub latency_us: Histogram<u64>,
    /// The measured window.
    pub window: Duration,
    /// Server CPU time (user + system) spent during the window.
    pub server_cpu: Duration,
}

/// What one connection saw.
struct Tally {
    ok: u64,
    errors: u64,
    latency_us: Histogram<u64>,
}

/// Runs the generator: warmup, then the measured window.
pub async fn run(load: Load) -> Result<Outcome> {
    let start = Instant::now();
    let from = start + load.warmup;
    let to = from + load.duration;

    let workers: Vec<_> = (0..load.connections)
        .map(|_| tokio::spawn(connection_loop(load.addr, from, to)))
        .collect();

    tokio::time::sleep_until(from).await;
    let cpu_before = cpu_time(load.server_pid).context("cannot read the server's cpu time")?;
    let measured_from = Instant::now();
    tokio::time::sleep_until(to).await;
    let cpu_after = cpu_time(load.server_pid).context("cannot read the server's cpu time")?;
    let window = measured_from.elapsed();

    let mut outcome = Outcome {
        ok: 0,
        errors: 0,
        latency_us: histogram(),
        window,
        server_cpu: cpu_after.saturating_sub(cpu_before),
    };
    for worker in workers {
        let tally = worker.await.context("a load connection panicked")?;
        outcome.ok += tally.ok;
        outcome.errors += tally.errors;
        outcome
            .latency_us
            .add(&tally.latency_us)
            .context("cannot merge latency histograms")?;
    }
    Ok(outcome)
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("the histogram bounds are valid")
}

/// One connection's closed loop: send, wait for the reply, repeat until `to`. A broken
/// connection is replaced; non-200 replies and bodies without `"result"` count as errors.
async fn connection_loop(addr: SocketAddr, from: Instant, to: Instant) -> Tally {
    let mut tally = Tally {
        ok: 0,
        errors: 0,
        latency_us: histogram(),
    };
    let body = Bytes::from_static(GET_HELLOWORLD.as_bytes());
    let host = addr.to_string();
    let mut sender: Option<SendRequest<Full<Bytes>>> = None;
    loop {
        if Instant::now() >= to {
            return tally;
        }
        if sender.is_none() {
            match tokio::time::timeout_at(to, connect(addr)).await {
                Ok(Ok(conn)) => sender = Some(conn),
                Ok(Err(_)) => {
                    if Instant::now() >= from {
                        tally.errors += 1;
                    }
                    tokio::time::sleep(Duration::from_millis(10)).await;
                    continue;
                }
                Err(_) => return tally,
            }
        }
        let conn = sender.as_mut().expect("connected just above");
        // A server may close a keep-alive connection between requests: that is no failed
        // request, just a reason to open a new connection.
        if conn.ready().await.is_err() {
            sender = None;
            continue;
        }
        let request = Request::post("/")
            .header(HOST, &host)
            .header(CONTENT_TYPE, "application/json")
            .body(Full::new(body.clone()))
            .expect("the request is well formed");
        let sent = Instant::now();
        // A reply that would arrive after the window is not counted anyway: stop waiting then.
        let Ok(reply) = tokio::time::timeout_at(to, exchange(conn, request)).await else {
            return tally;
        };
        let done = Instant::now();
        let counted = done >= from && done < to;
        match reply {
            Ok((status, body)) if status == StatusCode::OK && contains(&body, b"\"result\"") => {
                if counted {
                    tally.ok += 1;
                    let us = (done - sent).as_micros().clamp(1, MAX_LATENCY_US as u128) as u64;
                    tally
                        .latency_us
                        .record(us)
                        .expect("the latency is clamped into range");
                }
            }
            Ok(_) => {
                if counted {
                    tally.errors += 1;
                }
            }
            Err(_) => {
                if counted {
                    tally.errors += 1;
                }
                sender = None;
            }
        }
    }
}

/// Opens a keep-alive HTTP/1.1 client connection; its driver runs as its own task.
pub(crate) async fn connect(addr: SocketAddr) -> Result<SendRequest<Full<Bytes>>> {
    let stream = TcpStream::connect(addr)
        .await
        .with_context(|| format!("cannot connect to {addr}"))?;
    stream.set_nodelay(true).context("cannot set TCP_NODELAY")?;
    let (sender, connection) = http1::handshake(TokioIo::new(stream))
        .await
        .context("http handshake failed")?;
    tokio::spawn(async move {
        // The connection ends when the sender is dropped or the server closes it; either way
        // the loop notices through the sender.
        let _ = connection.await;
    });
    Ok(sender)
}

pub(crate) async fn exchange(
    conn: &mut SendRequest<Full<Bytes>>,
    request: Request<Full<Bytes>>,
) -> Result<(StatusCode, Bytes)> {
    conn.ready().await.context("the connection closed")?;
    let response = conn
        .send_request(request)
        .await
        .context("the request failed")?;
    let status = response.status();
    let body = response
        .into_body()
        .collect()
        .await
        .context("cannot read the reply body")?
        .to_bytes();
    Ok((status, body))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack
        .windows(needle.len())
        .any(|window| window == needle)
}

/// Sends one `POST /` with a JSON body on a new connection and returns the status and body.
pub async fn post_json(addr: SocketAddr, body: &str) -> Result<(StatusCode, Bytes)> {
    let mut conn = connect(addr).await?;
    let request = Request::post("/")
        .header(HOST, addr.to_string())
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::copy_from_slice(body.as_bytes())))
        .context("cannot build the request")?;
    tokio::time::timeout(Duration::from_secs(30), exchange(&mut conn, request))
        .await
        .with_context(|| format!("no reply from {addr} within 30s"))?
}

/// Checks that `get_helloworld` answers a JSON-RPC 2.0 reply with `result.result ==
/// "helloworld"`, so the load measures real calls and not error replies.
pub async fn verify_helloworld(addr: SocketAddr) -> Result<()> {
    let (status, body) = post_json(addr, GET_HELLOWORLD).await?;
    let text = String::from_utf8_lossy(&body);
    if status != StatusCode::OK {
        bail!("get_helloworld answered {status}: {text}");
    }
    let reply: serde_json::Value = serde_json::from_slice(&body)
        .with_context(|| format!("get_helloworld answered something that is not json: {text}"))?;
    if reply.pointer("/result/result").and_then(|v| v.as_str()) != Some("helloworld") {
        bail!(r#"get_helloworld's reply lacks "result":{{"result":"helloworld"}}: {text}"#);
    }
    Ok(())
}
