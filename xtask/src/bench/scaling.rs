//! The manager benchmark: wall time of `add_nodes` for 1, 10 and 30 nodes on the local cloud,
//! and the manager's memory, against a baseline measured in the same run: the same number of
//! `paasm agent` processes started directly (no manager, no contextualization script, no code
//! fetch), timed until every one answers `check_agent_process`.
//!
//! The difference is what the manager's path costs per batch: generating the boot script,
//! bash running it, each node fetching its component and binary path from the manager, the
//! controller's polling and the `on-nodes-added` hook calling every agent's `startup`.
//!
//! Then `add_nodes(10)` on clouds whose nodes are separate hosts ([`run_cloud`]): `netns`
//! (each node its own network namespace on a bridge, when this machine allows it) and `ec2`
//! against moto, whose instances `paasm ec2-hypervisor` boots as namespaces, against the local
//! cloud's batch of the same size from the same run.

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
    /// `add_nodes` on the clouds whose nodes are separate hosts.
    pub clouds: Clouds,
}

/// Where the bench finds what it runs.
pub struct Inputs<'a> {
    pub paasm: &'a Path,
    pub agent_component: &'a Path,
    pub config_dir: &'a Path,
    pub services_dir: &'a Path,
    pub work_dir: &'a Path,
    /// moto's server, for the ec2 cloud.
    pub moto_server: Option<&'a Path>,
}

/// A manager of the helloworld service started for a bench, killed (its nodes stopped) when
/// dropped.
struct BenchManager {
    addr: SocketAddr,
    pid: u32,
    // Dropped in order: the nodes' processes, then the manager.
    _nodes: StopNodes,
    _child: KillOnDrop,
}

impl BenchManager {
    /// Starts `paasm manager --service helloworld --cloud CLOUD` on a copy of the tree in
    /// `dir` (the cloud's configuration replaced by `cloud_cfg`, if given), listening on
    /// `listen`.
    fn start(
        inputs: &Inputs,
        dir: &Path,
        cloud: &str,
        cloud_cfg: Option<&str>,
        listen: &str,
    ) -> Result<Self> {
        let _ = fs::remove_dir_all(dir);
        let tree = dir.join("config");
        copy_tree(inputs.config_dir, &tree)?;
        if let Some(cfg) = cloud_cfg {
            fs::write(tree.join(format!("cloud/{cloud}.cfg")), cfg)?;
        }
        let agent_port = free_port()?;
        fs::write(
            tree.join("manager/helloworld-manager.cfg"),
            format!("AGENT_PORT = {agent_port}\nNODE_POLL_INTERVAL_MS = 50\n"),
        )?;
        let var = dir.join("var");
        let mut cmd = Command::new(inputs.paasm);
        cmd.args(["manager", "--service", "helloworld", "--cloud", cloud])
            .args(["--listen", listen])
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
        // A manager on every address is called on loopback.
        let addr = if addr.ip().is_unspecified() {
            SocketAddr::from(([127, 0, 0, 1], addr.port()))
        } else {
            addr
        };
        Ok(Self {
            addr,
            pid,
            _nodes: StopNodes(var.join("var/cache/paasm-manager/nodes")),
            _child: KillOnDrop(child),
        })
    }

    /// The agent port the manager's nodes serve on (a free port picked at start).
    fn agent_port(dir: &Path) -> Result<u16> {
        let cfg = fs::read_to_string(dir.join("config/manager/helloworld-manager.cfg"))?;
        cfg.lines()
            .find_map(|l| l.strip_prefix("AGENT_PORT = "))
            .and_then(|p| p.trim().parse().ok())
            .context("no AGENT_PORT in the bench's manager annex")
    }
}

/// `add_nodes(count)` on a cloud whose nodes are separate hosts.
#[derive(Debug, Clone)]
pub struct CloudBatch {
    pub cloud: String,
    /// What the cloud's nodes are.
    pub hosts: &'static str,
    pub nodes: usize,
    /// `add_nodes` from the request to RUNNING.
    pub add_nodes: Duration,
    /// `remove_nodes` of the same nodes, to RUNNING.
    pub remove_nodes: Duration,
}

/// The clouds measured beside the local one, and why any was not.
#[derive(Debug, Clone, Default)]
pub struct Clouds {
    pub batches: Vec<CloudBatch>,
    pub skipped: Vec<(String, String)>,
}

/// The batch measured on the other clouds.
pub const CLOUD_BATCH: usize = 10;

/// Measures `add_nodes(CLOUD_BATCH)` on `netns` and on `ec2` against moto (when this machine
/// can make namespaces); a cloud that cannot run or fails is reported with the reason, not
/// measured.
fn run_clouds(inputs: &Inputs) -> Clouds {
    let mut clouds = Clouds::default();
    let unavailable = netns_unavailable();
    let netns = match &unavailable {
        Some(why) => Err(why.clone()),
        None => run_cloud(
            inputs,
            "netns",
            None,
            "network namespaces on a bridge",
            CLOUD_BATCH,
        )
        .map_err(|e| format!("failed: {e:#}")),
    };
    let ec2 = match (&unavailable, inputs.moto_server) {
        (Some(why), _) => Err(format!("its hypervisor needs network namespaces: {why}")),
        (None, None) => Err("moto_server could not be installed".to_string()),
        (None, Some(moto)) => run_ec2(inputs, moto).map_err(|e| format!("failed: {e:#}")),
    };
    for (cloud, outcome) in [("netns", netns), ("ec2", ec2)] {
        match outcome {
            Ok(batch) => clouds.batches.push(batch),
            Err(why) => {
                eprintln!("==> manager: add_nodes on {cloud}: not measured: {why}");
                clouds.skipped.push((cloud.into(), why));
            }
        }
    }
    clouds
}

/// The ec2 batch: moto on a free port, `paasm ec2-hypervisor` booting its instances, a manager
/// whose cloud is that account.
fn run_ec2(inputs: &Inputs, moto_server: &Path) -> Result<CloudBatch> {
    let dir = inputs.work_dir.join("ec2");
    let _ = fs::remove_dir_all(&dir);
    fs::create_dir_all(&dir)?;
    let port = free_port()?;
    let moto = Command::new(moto_server)
        .args(["-H", "127.0.0.1", "-p", &port.to_string()])
        .stdout(Stdio::null())
        .stderr(Stdio::from(fs::File::create(dir.join("moto.log"))?))
        .spawn()
        .with_context(|| format!("cannot start {}", moto_server.display()))?;
    let _moto = KillOnDrop(moto);
    let endpoint = format!("http://127.0.0.1:{port}");
    let started = Instant::now();
    while TcpStream::connect(("127.0.0.1", port)).is_err() {
        if started.elapsed() > Duration::from_secs(60) {
            bail!("moto_server did not listen on {endpoint} within 60 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let (key, secret) = ("AKIDPAASMBENCH", "paasm-bench-secret");
    let mut cmd = Command::new(inputs.paasm);
    cmd.args(["ec2-hypervisor", "--endpoint", &endpoint])
        .args(["--access-key", key, "--secret-key", secret])
        .arg("--dir")
        .arg(dir.join("hosts"))
        .stderr(Stdio::from(fs::File::create(dir.join("hypervisor.log"))?));
    let announcing = Announcing::spawn(&mut cmd, "paasm ec2-hypervisor ready: ", false)?;
    let (child, ready) = announcing.line(Duration::from_secs(60))?;
    let _hypervisor = TermOnDrop(child);
    let value = |key: &str| -> Result<String> {
        ready
            .split_once(&format!("{key} = "))
            .and_then(|(_, rest)| rest.split_whitespace().next())
            .map(str::to_string)
            .with_context(|| format!("no {key} in the hypervisor's announcement: {ready}"))
    };
    let cfg = format!(
        "[iaas]\nDRIVER = ec2\nUSERNAME = {key}\nPASSWORD = {secret}\nREGION = us-east-1\n\
         IMAGE_ID = ami-12c6146b\nSIZE = t2.micro\nSECURITY_GROUP_NAME = paasm\nKEY_NAME = paasm\n\
         ENDPOINT = {endpoint}\nSUBNET_ID = {}\nADDRESS = private\nMANAGER_IP = {}\nTIMEOUT = 10\n",
        value("SUBNET_ID")?,
        value("MANAGER_IP")?
    );
    let batch = run_cloud(
        inputs,
        "ec2",
        Some(&cfg),
        "moto instances booted as network namespaces",
        CLOUD_BATCH,
    );
    // The hypervisor kills the hosts of terminated instances one after the other (each with
    // its grace period): let it finish before it is stopped.
    let booted = dir.join("hosts").join("instances.json");
    let started = Instant::now();
    while started.elapsed() < Duration::from_secs(180)
        && fs::read_to_string(&booted).is_ok_and(|t| t.trim() != "{}")
    {
        std::thread::sleep(Duration::from_millis(200));
    }
    batch
}

/// A child stopped with SIGTERM (so it can clean up), then SIGKILL after 180 s.
struct TermOnDrop(Child);

impl Drop for TermOnDrop {
    fn drop(&mut self) {
        // SAFETY: kill has no memory preconditions; the pid is our own child's.
        unsafe {
            libc::kill(self.0.id() as libc::pid_t, libc::SIGTERM);
        }
        let started = Instant::now();
        while started.elapsed() < Duration::from_secs(180) {
            if let Ok(Some(_)) = self.0.try_wait() {
                return;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Why netns nodes cannot be made here (root and iproute2 are needed), if they cannot.
fn netns_unavailable() -> Option<String> {
    let status = fs::read_to_string("/proc/self/status").unwrap_or_default();
    let euid = status
        .lines()
        .find_map(|l| l.strip_prefix("Uid:"))
        .and_then(|ids| ids.split_whitespace().nth(1))
        .unwrap_or("");
    if euid != "0" {
        return Some("network namespaces need root".into());
    }
    match Command::new("ip").args(["netns", "list"]).output() {
        Ok(out) if out.status.success() => None,
        Ok(out) => Some(format!(
            "`ip netns list` failed: {}",
            String::from_utf8_lossy(&out.stderr).trim()
        )),
        Err(e) => Some(format!("iproute2's `ip` cannot run: {e}")),
    }
}

/// One `add_nodes(count)` and `remove_nodes(count)` on `cloud` (configured by `cloud_cfg`
/// when given).
fn run_cloud(
    inputs: &Inputs,
    cloud: &str,
    cloud_cfg: Option<&str>,
    hosts: &'static str,
    count: usize,
) -> Result<CloudBatch> {
    eprintln!("==> manager: add_nodes({count}) on {cloud}");
    let dir = inputs.work_dir.join(format!("manager-{cloud}"));
    // Nodes on a cloud's own network reach the manager at its gateway there.
    let m = BenchManager::start(inputs, &dir, cloud, cloud_cfg, "0.0.0.0:0")?;
    call(m.addr, "POST", "startup", json!({}))?;
    wait_stable(m.addr, "RUNNING")?;
    let started = Instant::now();
    call(m.addr, "POST", "add_nodes", json!({"count": count}))?;
    wait_stable(m.addr, "RUNNING")?;
    let add_nodes = started.elapsed();
    let listed = call(m.addr, "GET", "list_nodes", json!({}))?;
    let nodes = listed["helloworld"].as_array().map_or(0, Vec::len);
    if nodes != count {
        bail!("add_nodes({count}) on {cloud} left {nodes} nodes: {listed}");
    }
    let started = Instant::now();
    call(m.addr, "POST", "remove_nodes", json!({"count": count}))?;
    wait_stable(m.addr, "RUNNING")?;
    let remove_nodes = started.elapsed();
    call(m.addr, "POST", "shutdown", json!({}))?;
    wait_stable(m.addr, "STOPPED")?;
    eprintln!(
        "    {count} nodes: add_nodes {:.2} s, remove_nodes {:.2} s",
        add_nodes.as_secs_f64(),
        remove_nodes.as_secs_f64()
    );
    Ok(CloudBatch {
        cloud: cloud.to_string(),
        hosts,
        nodes: count,
        add_nodes,
        remove_nodes,
    })
}

/// Runs the scaling bench.
pub fn run(inputs: &Inputs) -> Result<Scaling> {
    eprintln!("==> manager: add_nodes on the local cloud");
    let dir = inputs.work_dir.join("manager");
    let manager = BenchManager::start(inputs, &dir, "local", None, "127.0.0.1:0")?;
    let (addr, pid) = (manager.addr, manager.pid);
    let agent_port = BenchManager::agent_port(&dir)?;

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
    drop(manager);
    let clouds = run_clouds(inputs);
    Ok(Scaling {
        batches,
        idle_rss_kib,
        peak_rss_kib,
        clouds,
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
