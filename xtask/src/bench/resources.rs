//! The resource engine benchmark: create+delete pairs per second of the `account` resource
//! through `paasm resources` (JSON-RPC 2.0 on keep-alive connections), against a baseline
//! measured in the same run: the same filesystem work the account implementation does (make
//! a home directory with its marker file, then remove it) done natively in this process.
//!
//! The difference is what the engine path costs per operation: HTTP, parameter checks, the
//! engine's records in SQLite, a fresh component instance and the WASI filesystem calls.

use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::Full;
use hyper::Request;
use hyper::header::{CONTENT_TYPE, HOST};

use super::load;
use crate::process::{Announcing, KillOnDrop};

/// Concurrent clients (and native threads).
const CLIENTS: usize = 4;

/// What the resources bench measured.
#[derive(Debug, Clone)]
pub struct ResourceBench {
    pub pairs_per_s: f64,
    pub native_pairs_per_s: f64,
    pub clients: usize,
    pub duration: Duration,
}

/// Runs the bench for `duration` (after `warmup`).
pub fn run(
    runtime: &tokio::runtime::Runtime,
    paasm: &Path,
    components: &Path,
    work_dir: &Path,
    warmup: Duration,
    duration: Duration,
) -> Result<ResourceBench> {
    eprintln!("==> resources: account create+delete");
    let dir = work_dir.join("resources");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let config = dir.join("resources.toml");
    fs::write(
        &config,
        "[implementations]\nunix_home = \"account.wasm\"\n\n[resources.account]\nimplementation = \"unix_home\"\ngrants = [\"${DATA}/homes\"]\nconfig = { homes = \"${DATA}/homes\" }\n",
    )?;
    let mut cmd = Command::new(paasm);
    cmd.arg("resources")
        .arg("--config")
        .arg(&config)
        .arg("--data")
        .arg(dir.join("data"))
        .arg("--components")
        .arg(components)
        .args(["--listen", "127.0.0.1:0"])
        .stderr(Stdio::from(fs::File::create(dir.join("paasm.stderr.log"))?));
    let announcing = Announcing::spawn(&mut cmd, "paasm resources listening on ", false)?;
    let (child, addr) = announcing.ready(Some(Duration::from_secs(120)))?;
    let _server = KillOnDrop(child);

    let pairs_per_s = runtime.block_on(engine_pairs(addr, warmup, duration))?;
    let native_pairs_per_s = native_pairs(&dir.join("native"), warmup, duration)?;
    eprintln!(
        "    paasm resources {pairs_per_s:.0} create+delete/s, native filesystem {native_pairs_per_s:.0}/s ({CLIENTS} clients)"
    );
    Ok(ResourceBench {
        pairs_per_s,
        native_pairs_per_s,
        clients: CLIENTS,
        duration,
    })
}

async fn call(
    conn: &mut hyper::client::conn::http1::SendRequest<Full<Bytes>>,
    addr: SocketAddr,
    method: &str,
    key: &str,
) -> Result<()> {
    let body = serde_json::json!({
        "jsonrpc": "2.0", "id": 1, "method": method,
        "params": {"resource": "account", "key": key},
    })
    .to_string();
    let request = Request::post("/")
        .header(HOST, addr.to_string())
        .header(CONTENT_TYPE, "application/json")
        .body(Full::new(Bytes::from(body)))?;
    let (status, reply) = load::exchange(conn, request).await?;
    let text = String::from_utf8_lossy(&reply);
    if !status.is_success() || !text.contains("\"result\"") {
        bail!("{method} {key} answered {status}: {text}");
    }
    Ok(())
}

async fn engine_pairs(addr: SocketAddr, warmup: Duration, duration: Duration) -> Result<f64> {
    let start = Instant::now() + warmup;
    let end = start + duration;
    let counted = Arc::new(AtomicU64::new(0));
    let mut tasks = Vec::new();
    for client in 0..CLIENTS {
        let counted = counted.clone();
        tasks.push(tokio::spawn(async move {
            let mut conn = load::connect(addr).await?;
            let mut i = 0u64;
            loop {
                let now = Instant::now();
                if now >= end {
                    return anyhow::Ok(());
                }
                let key = format!("bench{client}x{i}");
                call(&mut conn, addr, "create", &key).await?;
                call(&mut conn, addr, "delete", &key).await?;
                if now >= start && Instant::now() <= end {
                    counted.fetch_add(1, Ordering::Relaxed);
                }
                i += 1;
            }
        }));
    }
    for task in tasks {
        task.await.context("a bench client panicked")??;
    }
    Ok(counted.load(Ordering::Relaxed) as f64 / duration.as_secs_f64())
}

fn native_pairs(dir: &Path, warmup: Duration, duration: Duration) -> Result<f64> {
    fs::create_dir_all(dir)?;
    let start = Instant::now() + warmup;
    let end = start + duration;
    let counted = Arc::new(AtomicU64::new(0));
    let threads: Vec<_> = (0..CLIENTS)
        .map(|client| {
            let (dir, counted) = (dir.to_path_buf(), counted.clone());
            std::thread::spawn(move || -> std::io::Result<()> {
                let mut i = 0u64;
                while Instant::now() < end {
                    let home = dir.join(format!("bench{client}x{i}"));
                    fs::create_dir(&home)?;
                    fs::write(home.join(".paasm-account"), i.to_string())?;
                    fs::remove_dir_all(&home)?;
                    let now = Instant::now();
                    if now >= start && now <= end {
                        counted.fetch_add(1, Ordering::Relaxed);
                    }
                    i += 1;
                }
                Ok(())
            })
        })
        .collect();
    for t in threads {
        t.join()
            .map_err(|_| anyhow::anyhow!("a native bench thread panicked"))??;
    }
    Ok(counted.load(Ordering::Relaxed) as f64 / duration.as_secs_f64())
}
