//! The manager benchmark: wall time of `add_nodes` for 1, 10 and 30 nodes on the local cloud,
//! and the manager's memory, against a baseline measured in the same run: the same number of
//! `paasm agent` processes started directly (no manager, no contextualization script, no code
//! fetch), timed until every one answers `check_agent_process`.
//!
//! The difference is what the manager's path costs per batch: generating the boot script,
//! bash running it, each node fetching its component and binary path from the manager, the
//! controller's polling and the `on-nodes-added` hook calling every agent's `startup`.

use std::fs;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde_json::{Value, json};

use crate::process::{Announcing, KillOnDrop};

/// The batch sizes measured.
pub const BATCHES: [usize; 3] = [1, 10, 30];

/// How long one batch may take before the bench gives up.
const BATCH_TIMEOUT: Duration = Duration::from_secs(300);

/// One measured batch.
#[derive(Debug, Clone)]
pub struct Batch {
    pub nodes: usize,
    /// `add_nodes` from the request to RUNNING.
    pub add_nodes: Duration,
    /// The same number of agents started directly until all answer.
    pub direct: Duration,
    /// The manager's resident memory after the batch.
    pub manager_rss_kib: u64,
}

/// What the scaling bench measured.
#[derive(Debug, Clone)]
pub struct Scaling {
    pub batches: Vec<Batch>,
    /// The manager's resident memory after `startup`, before any node.
    pub idle_rss_kib: u64,
    /// The manager's peak resident memory over the whole run.
    pub peak_rss_kib: u64,
}

/// Where the bench finds what it runs.
pub struct Inputs<'a> {
    pub paasm: &'a Path,
    pub agent_component: &'a Path,
    pub config_dir: &'a Path,
    pub services_dir: &'a Path,
    pub work_dir: &'a Path,
}

/// Runs the scaling bench.
pub fn run(inputs: &Inputs) -> Result<Scaling> {
    eprintln!("==> manager: add_nodes on the local cloud");
    let dir = inputs.work_dir.join("manager");
    let _ = fs::remove_dir_all(&dir);
    let tree = dir.join("config");
    copy_tree(inputs.config_dir, &tree)?;
    let agent_port = free_port()?;
    fs::write(
        tree.join("manager/helloworld-manager.cfg"),
        format!("AGENT_PORT = {agent_port}\nNODE_POLL_INTERVAL_MS = 50\n"),
    )?;
    let var = dir.join("var");
    let mut cmd = Command::new(inputs.paasm);
    cmd.args([
        "manager",
        "--service",
        "helloworld",
        "--listen",
        "127.0.0.1:0",
    ])
    .arg("--var")
    .arg(&var)
    .arg("--config-dir")
    .arg(&tree)
    .arg("--services-dir")
    .arg(inputs.services_dir)
    .stderr(Stdio::from(fs::File::create(
        dir.join("manager.stderr.log"),
    )?));
    let announcing = Announcing::spawn(&mut cmd, "paasm manager listening on ", false)?;
    let pid = announcing.id();
    let (child, addr) = announcing.ready(Some(Duration::from_secs(120)))?;
    let _manager = KillOnDrop(child);
    let nodes_dir = var.join("var/cache/paasm-manager/nodes");
    let _nodes = StopNodes(nodes_dir);

    call(addr, "POST", "startup", json!({}))?;
    wait_stable(addr, "RUNNING")?;
    let idle_rss_kib = status_kib(pid, "VmRSS")?;
    let mut batches = Vec::new();
    for n in BATCHES {
        let started = Instant::now();
        call(addr, "POST", "add_nodes", json!({"count": n}))?;
        wait_stable(addr, "RUNNING")?;
        let add_nodes = started.elapsed();
        let manager_rss_kib = status_kib(pid, "VmRSS")?;
        call(addr, "POST", "remove_nodes", json!({"count": n}))?;
        wait_stable(addr, "RUNNING")?;
        let direct = direct_agents(inputs, &dir.join(format!("direct-{n}")), n, agent_port)?;
        eprintln!(
            "    {n:>2} nodes: add_nodes {:.2} s, {n} agents started directly {:.2} s, manager rss {} KiB",
            add_nodes.as_secs_f64(),
            direct.as_secs_f64(),
            manager_rss_kib
        );
        batches.push(Batch {
            nodes: n,
            add_nodes,
            direct,
            manager_rss_kib,
        });
    }
    let peak_rss_kib = status_kib(pid, "VmHWM")?;
    call(addr, "POST", "shutdown", json!({}))?;
    wait_stable(addr, "STOPPED")?;
    Ok(Scaling {
        batches,
        idle_rss_kib,
        peak_rss_kib,
    })
}

/// Starts `n` agents directly on 127.0.0.2.. and times them until all answer.
fn direct_agents(inputs: &Inputs, dir: &Path, n: usize, port: u16) -> Result<Duration> {
    let _ = fs::remove_dir_all(dir);
    let config = crate::agent::write_config(dir, crate::agent::Instances::Fresh)?;
    let started = Instant::now();
    let mut children: Vec<KillOnDrop> = Vec::with_capacity(n);
    let mut addrs = Vec::with_capacity(n);
    for i in 0..n {
        let addr: SocketAddr = format!("127.0.0.{}:{port}", i + 2).parse()?;
        let node = dir.join(format!("node{i}"));
        fs::create_dir_all(&node)?;
        let text = fs::read_to_string(&config)?
            .replace(&dir.display().to_string(), &node.display().to_string());
        let node_config = node.join("agent.cfg");
        fs::write(&node_config, text)?;
        let child: Child =
            crate::agent::command(inputs.paasm, &node_config, inputs.agent_component, addr)
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .context("cannot start paasm agent")?;
        children.push(KillOnDrop(child));
        addrs.push(addr);
    }
    for addr in addrs {
        while call(addr, "GET", "check_agent_process", json!({})).is_err() {
            if started.elapsed() > BATCH_TIMEOUT {
                bail!("agent {addr} did not answer within {BATCH_TIMEOUT:?}");
            }
            std::thread::sleep(Duration::from_millis(10));
        }
    }
    Ok(started.elapsed())
}

fn wait_stable(addr: SocketAddr, expected: &str) -> Result<()> {
    let started = Instant::now();
    loop {
        let info = call(addr, "GET", "get_service_info", json!({}))?;
        let state = info["state"].as_str().unwrap_or_default().to_string();
        if state == expected {
            return Ok(());
        }
        if !["PROLOGUE", "ADAPTING", "EPILOGUE"].contains(&state.as_str()) {
            let history = call(addr, "GET", "get_service_history", json!({}))?;
            bail!("the manager went to {state} instead of {expected}: {history}");
        }
        if started.elapsed() > BATCH_TIMEOUT {
            bail!("the manager is still {state} after {BATCH_TIMEOUT:?}");
        }
        std::thread::sleep(Duration::from_millis(10));
    }
}

/// One ConPaaS-dialect call; the `result`, or the `error` as an error.
fn call(addr: SocketAddr, verb: &str, method: &str, params: Value) -> Result<Value> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(5))?;
    stream.set_read_timeout(Some(Duration::from_secs(30)))?;
    let request = if verb == "GET" {
        format!(
            "GET /?method={method}&id=1 HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\r\n"
        )
    } else {
        let body = json!({"method": method, "params": params, "id": 1}).to_string();
        format!(
            "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    };
    stream.write_all(request.as_bytes())?;
    let mut bytes = Vec::new();
    stream.read_to_end(&mut bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let body = text
        .split_once("\r\n\r\n")
        .map(|(_, b)| b)
        .context("no HTTP body")?;
    let reply: Value = serde_json::from_str(body).with_context(|| format!("not JSON: {body}"))?;
    match reply.get("error") {
        Some(Value::String(e)) => bail!("{method}: {e}"),
        _ => Ok(reply["result"].clone()),
    }
}

/// A `/proc/<pid>/status` figure in KiB (`VmRSS`, `VmHWM`).
fn status_kib(pid: u32, key: &str) -> Result<u64> {
    let status = fs::read_to_string(format!("/proc/{pid}/status"))?;
    status
        .lines()
        .find_map(|l| l.strip_prefix(key)?.strip_prefix(':'))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .with_context(|| format!("no {key} in /proc/{pid}/status"))
}

fn free_port() -> Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?
        .local_addr()?
        .port())
}

fn copy_tree(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to)?;
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_tree(&entry.path(), &dest)?;
        } else {
            fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

/// Stops whatever nodes the manager left, whatever happens to the bench.
struct StopNodes(PathBuf);

impl Drop for StopNodes {
    fn drop(&mut self) {
        crate::up::stop_nodes(&self.0);
    }
}
