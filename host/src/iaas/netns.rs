//! The `netns` cloud: every node is its own Linux network namespace on a bridge the driver owns.
//!
//! The driver creates a bridge (`pb<tag>`) holding the gateway address `.1` of a private /24
//! (10.X.Y.0/24, chosen so that no interface of the machine already uses it, or `NETWORK` of
//! the cloud's section). Each node is a namespace `paasm-<tag>-<vmid>` joined to the bridge by a
//! veth pair (`pv<tag>-<vmid>` on the host, `eth0` inside), with its own address `.2` to `.254`
//! and a default route through the gateway. `<tag>` is derived from the driver's base directory,
//! so two managers (or two clouds of one manager) never clash. The node's contextualization
//! script runs with bash inside the namespace, in the node's directory, with `NODE_DIR` and
//! `NODE_IP` exported, as the leader of a new process group. The node reaches the manager at
//! the gateway address ([`Cloud::gateway`]) and the other nodes over the bridge, and nothing else.
//!
//! Killing a node signals its process group and then every process left in its namespace
//! (SIGTERM, SIGKILL after a grace period), deletes the namespace and its veth, and when no node
//! is left, the bridge. Each node directory holds a `netns.json` record, so a driver opened
//! later on the same base directory (a restarted manager) takes over the nodes still running.
//!
//! It needs root and `ip` (iproute2); [`NetnsCloud::new`] says which is missing.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, kill, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};
use sha2::{Digest, Sha256};

use super::cloud::{Cloud, CloudError, Instance, InstanceState};

/// How long a node's processes get to exit after SIGTERM before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// The record of a node in its directory.
const RECORD: &str = "netns.json";

/// What a node directory's [`RECORD`] says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NetnsRecord {
    pub vmid: String,
    pub ip: String,
    /// The process group of the boot script.
    pub pgid: i32,
    /// The node's network namespace.
    pub netns: String,
    /// The host side of the node's veth pair (`ip link set VETH down` partitions the node).
    pub veth: String,
}

struct Node {
    record: NetnsRecord,
    child: Option<Child>,
}

impl Node {
    fn alive(&mut self) -> bool {
        if let Some(child) = &mut self.child {
            let _ = child.try_wait();
        }
        killpg(Pid::from_raw(self.record.pgid), None).is_ok()
    }
}

#[derive(Default)]
struct NetnsState {
    next_vmid: u64,
    nodes: BTreeMap<String, Node>,
    /// Whether the bridge is up with its address.
    bridge_up: bool,
}

/// The netns cloud driver.
pub struct NetnsCloud {
    name: String,
    base: PathBuf,
    tag: String,
    /// The first three octets of the network.
    network: [u8; 3],
    state: Mutex<NetnsState>,
}

/// Parses a `NETWORK` setting: the first three octets of a private /24 (`10.X.Y`).
pub fn parse_network(text: &str) -> Result<[u8; 3], String> {
    let parts: Vec<Option<u8>> = text.trim().split('.').map(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [Some(10), Some(x), Some(y)] => Ok([10, *x, *y]),
        _ => Err(format!(
            "expected the first three octets of a network in 10.0.0.0/8, such as 10.77.3, found {text:?}"
        )),
    }
}

/// Why this machine cannot run the netns driver, if it cannot.
pub fn unavailable() -> Option<String> {
    if !nix::unistd::geteuid().is_root() {
        return Some(format!(
            "the netns driver needs root to create network namespaces (running as uid {})",
            nix::unistd::geteuid()
        ));
    }
    match Command::new("ip")
        .arg("-V")
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
    {
        Ok(s) if s.success() => None,
        _ => Some("the netns driver needs the ip command (Debian package iproute2)".into()),
    }
}

/// Runs `ip ARGS`; the error carries its stderr.
fn ip(args: &[&str]) -> Result<String, String> {
    let output = Command::new("ip")
        .args(args)
        .stdin(Stdio::null())
        .output()
        .map_err(|e| format!("cannot run ip: {e}"))?;
    if output.status.success() {
        Ok(String::from_utf8_lossy(&output.stdout).into_owned())
    } else {
        Err(format!(
            "ip {} failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&output.stderr).trim()
        ))
    }
}

/// The tag naming a driver's bridge and namespaces: six hex digits of its base directory.
fn tag_of(base: &Path) -> String {
    let path = std::path::absolute(base).unwrap_or_else(|_| base.to_path_buf());
    let digest = Sha256::digest(path.as_os_str().as_encoded_bytes());
    hex::encode(&digest[..3])
}

/// Whether any interface of this machine has an address in `a.b.c.0/24`.
fn network_in_use(network: [u8; 3]) -> bool {
    let [a, b, c] = network;
    let prefix = format!(" {a}.{b}.{c}.");
    ip(&["-4", "-o", "addr", "show"])
        .map(|out| out.lines().any(|l| l.contains(&prefix)))
        .unwrap_or(false)
}

/// The network of a bridge that exists already (a restarted driver).
fn bridge_network(bridge: &str) -> Option<[u8; 3]> {
    let out = ip(&["-4", "-o", "addr", "show", "dev", bridge]).ok()?;
    let addr = out.split_whitespace().skip_while(|w| *w != "inet").nth(1)?;
    let octets: Vec<u8> = addr
        .split('/')
        .next()?
        .split('.')
        .filter_map(|o| o.parse().ok())
        .collect();
    match octets.as_slice() {
        [a, b, c, 1] => Some([*a, *b, *c]),
        _ => None,
    }
}

impl NetnsCloud {
    /// A netns cloud named `name` keeping its nodes' directories under `base`, on `network`
    /// (or one it picks); nodes a previous driver started there and that still run are taken
    /// over. Fails when this machine cannot run it.
    pub fn new(name: &str, base: &Path, network: Option<[u8; 3]>) -> Result<Self, CloudError> {
        let error = |message: String| CloudError {
            cloud: name.to_string(),
            message,
        };
        if let Some(why) = unavailable() {
            return Err(error(why));
        }
        std::fs::create_dir_all(base)
            .map_err(|e| error(format!("cannot create {}: {e}", base.display())))?;
        let tag = tag_of(base);
        let bridge = format!("pb{tag}");
        let network = match (network, bridge_network(&bridge)) {
            (Some(n), _) => n,
            (None, Some(n)) => n,
            (None, None) => {
                let digest = Sha256::digest(tag.as_bytes());
                let first = [10, 100 + digest[0] % 100, digest[1]];
                let candidates = (0..=255u8).map(|i| [10, first[1], first[2].wrapping_add(i)]);
                let mut found = None;
                for candidate in candidates {
                    if !network_in_use(candidate) {
                        found = Some(candidate);
                        break;
                    }
                }
                found.ok_or_else(|| error("no free 10.X.Y.0/24 network for the bridge".into()))?
            }
        };
        let mut state = NetnsState {
            next_vmid: 1,
            ..NetnsState::default()
        };
        for record in records(base) {
            if let Ok(n) = record.vmid.parse::<u64>() {
                state.next_vmid = state.next_vmid.max(n + 1);
            }
            let mut node = Node {
                record: record.clone(),
                child: None,
            };
            if node.alive() {
                tracing::info!(cloud = name, vmid = %record.vmid, ip = %record.ip, netns = %record.netns, "found running node");
                state.bridge_up = true;
                state.nodes.insert(record.vmid, node);
            } else {
                // Its processes are gone: remove what is left of its network.
                remove_network(&record);
                let _ = std::fs::remove_file(base.join(&record.vmid).join(RECORD));
            }
        }
        Ok(Self {
            name: name.to_string(),
            base: base.to_path_buf(),
            tag,
            network,
            state: Mutex::new(state),
        })
    }

    fn error(&self, message: String) -> CloudError {
        CloudError {
            cloud: self.name.clone(),
            message,
        }
    }

    /// The bridge's name.
    pub fn bridge(&self) -> String {
        format!("pb{}", self.tag)
    }

    /// The directory of the nodes' directories.
    pub fn base(&self) -> &Path {
        &self.base
    }

    /// The network, `10.X.Y`.
    pub fn network(&self) -> [u8; 3] {
        self.network
    }

    /// The gateway address on the bridge.
    fn gateway_ip(&self) -> String {
        let [a, b, c] = self.network;
        format!("{a}.{b}.{c}.1")
    }

    fn ensure_bridge(&self, state: &mut NetnsState) -> Result<(), CloudError> {
        if state.bridge_up {
            return Ok(());
        }
        let bridge = self.bridge();
        let gateway = format!("{}/24", self.gateway_ip());
        let exists = ip(&["link", "show", "dev", &bridge]).is_ok();
        let setup = || -> Result<(), String> {
            if !exists {
                ip(&["link", "add", "name", &bridge, "type", "bridge"])?;
            }
            if bridge_network(&bridge) != Some(self.network) {
                ip(&["addr", "add", &gateway, "dev", &bridge])?;
            }
            ip(&["link", "set", "dev", &bridge, "up"])?;
            Ok(())
        };
        setup().map_err(|e| self.error(format!("cannot set up the bridge {bridge}: {e}")))?;
        tracing::info!(cloud = %self.name, bridge, gateway, "bridge up");
        state.bridge_up = true;
        Ok(())
    }

    fn remove_bridge(&self, state: &mut NetnsState) {
        let bridge = self.bridge();
        if ip(&["link", "show", "dev", &bridge]).is_ok()
            && let Err(e) = ip(&["link", "del", "dev", &bridge])
        {
            tracing::warn!(cloud = %self.name, "cannot remove the bridge: {e}");
        }
        state.bridge_up = false;
    }

    fn free_ip(&self, state: &NetnsState) -> Option<String> {
        let [a, b, c] = self.network;
        (2..=254u8)
            .map(|o| format!("{a}.{b}.{c}.{o}"))
            .find(|ip| !state.nodes.values().any(|n| &n.record.ip == ip))
    }

    /// Creates the namespace of a node and plugs it into the bridge.
    fn plug(&self, record: &NetnsRecord) -> Result<(), String> {
        let ns = record.netns.as_str();
        let peer = format!("pp{}-{}", self.tag, record.vmid);
        let addr = format!("{}/24", record.ip);
        let gateway = self.gateway_ip();
        ip(&["netns", "add", ns])?;
        let steps: [&[&str]; 8] = [
            &[
                "link",
                "add",
                "name",
                &record.veth,
                "type",
                "veth",
                "peer",
                "name",
                &peer,
            ],
            &["link", "set", "dev", &peer, "netns", ns],
            &[
                "link",
                "set",
                "dev",
                &record.veth,
                "master",
                &self.bridge(),
                "up",
            ],
            &["-n", ns, "link", "set", "dev", &peer, "name", "eth0"],
            &["-n", ns, "addr", "add", &addr, "dev", "eth0"],
            &["-n", ns, "link", "set", "dev", "eth0", "up"],
            &["-n", ns, "link", "set", "dev", "lo", "up"],
            &["-n", ns, "route", "add", "default", "via", &gateway],
        ];
        for step in steps {
            ip(step)?;
        }
        Ok(())
    }

    fn boot(&self, record: &NetnsRecord, script: &str) -> Result<Child, CloudError> {
        let dir = self.base.join(&record.vmid);
        std::fs::create_dir_all(&dir)
            .map_err(|e| self.error(format!("cannot create {}: {e}", dir.display())))?;
        let script_path = dir.join("boot.sh");
        std::fs::write(&script_path, script)
            .map_err(|e| self.error(format!("cannot write {}: {e}", script_path.display())))?;
        let log = |name: &str| {
            std::fs::File::create(dir.join(name))
                .map(Stdio::from)
                .map_err(|e| self.error(format!("cannot create {name} in {}: {e}", dir.display())))
        };
        if let Err(e) = self.plug(record) {
            remove_network(record);
            return Err(self.error(format!("cannot create node {}: {e}", record.vmid)));
        }
        let spawned = std::os::unix::process::CommandExt::process_group(
            Command::new("ip")
                .args(["netns", "exec", &record.netns, "bash"])
                .arg(&script_path)
                .current_dir(&dir)
                .env("NODE_DIR", &dir)
                .env("NODE_IP", &record.ip)
                .stdin(Stdio::null())
                .stdout(log("boot.out")?)
                .stderr(log("boot.err")?),
            0,
        )
        .spawn();
        let child = match spawned {
            Ok(child) => child,
            Err(e) => {
                remove_network(record);
                return Err(self.error(format!("cannot run bash in node {}: {e}", record.vmid)));
            }
        };
        let record = NetnsRecord {
            pgid: child.id() as i32,
            ..record.clone()
        };
        let written = serde_json::to_vec(&record)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(dir.join(RECORD), bytes));
        if let Err(e) = written {
            let mut child = child;
            stop_processes(&record, Some(&mut child));
            remove_network(&record);
            return Err(self.error(format!("cannot record node {}: {e}", record.vmid)));
        }
        Ok(child)
    }

    fn start_one(&self, script: &str) -> Result<Instance, CloudError> {
        self.start_at(None, script)
    }

    /// Starts one node at address `ip` of the cloud's network (the address a machine was
    /// given elsewhere, as a hypervisor does for another cloud's instance).
    pub fn boot_at(&self, ip: &str, script: &str) -> Result<Instance, CloudError> {
        self.start_at(Some(ip), script)
    }

    fn start_at(&self, ip: Option<&str>, script: &str) -> Result<Instance, CloudError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.ensure_bridge(&mut state)?;
        let ip = match ip {
            Some(ip) => {
                let [a, b, c] = self.network;
                let host = ip.strip_prefix(&format!("{a}.{b}.{c}."));
                if !host
                    .and_then(|h| h.parse::<u8>().ok())
                    .is_some_and(|h| (2..=254).contains(&h))
                {
                    return Err(
                        self.error(format!("{ip} is not a node address of {a}.{b}.{c}.0/24"))
                    );
                }
                if state.nodes.values().any(|n| n.record.ip == ip) {
                    return Err(self.error(format!("address {ip} is taken")));
                }
                Some(ip.to_string())
            }
            None => self.free_ip(&state),
        };
        let Some(ip) = ip else {
            return Err(self.error(format!(
                "no free address on {} for another node ({} running)",
                self.bridge(),
                state.nodes.len()
            )));
        };
        let vmid = state.next_vmid.to_string();
        state.next_vmid += 1;
        let record = NetnsRecord {
            netns: format!("paasm-{}-{vmid}", self.tag),
            veth: format!("pv{}-{vmid}", self.tag),
            vmid: vmid.clone(),
            ip: ip.clone(),
            pgid: 0,
        };
        let child = self.boot(&record, script)?;
        let record = NetnsRecord {
            pgid: child.id() as i32,
            ..record
        };
        state.nodes.insert(
            vmid.clone(),
            Node {
                record,
                child: Some(child),
            },
        );
        Ok(Instance {
            vmid,
            private_ip: ip.clone(),
            ip,
            state: InstanceState::Running,
        })
    }
}

/// The processes inside a namespace.
fn netns_pids(netns: &str) -> Vec<Pid> {
    ip(&["netns", "pids", netns])
        .unwrap_or_default()
        .split_whitespace()
        .filter_map(|p| p.parse().ok())
        .map(Pid::from_raw)
        .collect()
}

/// Stops every process of a node: its process group and whatever else runs in its namespace
/// (SIGTERM, then SIGKILL after the grace period). `child`, the node's boot shell when this
/// process started it, is reaped as soon as it exits: until then it is a zombie that still
/// counts as a member of its group, and the wait would last the whole grace period.
fn stop_processes(record: &NetnsRecord, mut child: Option<&mut Child>) {
    let group = Pid::from_raw(record.pgid);
    let signal_all = |signal: Signal| {
        if record.pgid > 0 {
            let _ = killpg(group, signal);
        }
        for pid in netns_pids(&record.netns) {
            let _ = kill(pid, signal);
        }
    };
    let mut alive = || {
        if let Some(child) = child.as_deref_mut() {
            let _ = child.try_wait();
        }
        (record.pgid > 0 && killpg(group, None).is_ok()) || !netns_pids(&record.netns).is_empty()
    };
    signal_all(Signal::SIGTERM);
    let deadline = Instant::now() + KILL_GRACE;
    while alive() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(20));
    }
    if alive() {
        signal_all(Signal::SIGKILL);
        let deadline = Instant::now() + Duration::from_secs(2);
        while alive() && Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(10));
        }
    }
}

/// Deletes a node's namespace and veth pair, whatever is left of them.
fn remove_network(record: &NetnsRecord) {
    if let Err(e) = ip(&["netns", "del", &record.netns])
        && !e.contains("No such file")
    {
        tracing::warn!(netns = %record.netns, "cannot delete the namespace: {e}");
    }
    // Deleting the namespace destroys the peer and so the pair; a half-built node may have a
    // veth that never moved.
    if ip(&["link", "show", "dev", &record.veth]).is_ok() {
        let _ = ip(&["link", "del", "dev", &record.veth]);
    }
}

/// The node records under `base`, in no particular order; unreadable ones are skipped.
pub fn records(base: &Path) -> Vec<NetnsRecord> {
    std::fs::read_dir(base)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join(RECORD)).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect()
}

/// Kills every node recorded under `base` and removes their namespaces and the bridge, whoever
/// started them (a safety net for operators and tests). Returns how many nodes it removed.
pub fn kill_all(base: &Path) -> usize {
    let found = records(base);
    let tag = tag_of(base);
    for record in &found {
        stop_processes(record, None);
        remove_network(record);
        let _ = std::fs::remove_file(base.join(&record.vmid).join(RECORD));
    }
    let bridge = format!("pb{tag}");
    if unavailable().is_none() && ip(&["link", "show", "dev", &bridge]).is_ok() {
        let _ = ip(&["link", "del", "dev", &bridge]);
    }
    found.len()
}

impl Cloud for NetnsCloud {
    fn name(&self) -> &str {
        &self.name
    }

    /// Starts all `count` nodes or none.
    fn new_instances(&self, count: usize, script: &str) -> Result<Vec<Instance>, CloudError> {
        let mut started = Vec::with_capacity(count);
        let outcome = (0..count).try_for_each(|_| {
            started.push(self.start_one(script)?);
            Ok(())
        });
        match outcome {
            Ok(()) => Ok(started),
            Err(e) => {
                for instance in &started {
                    let _ = self.kill_instance(&instance.vmid);
                }
                Err(e)
            }
        }
    }

    /// Kills the node's processes, then removes its namespace and veth; the bridge goes with
    /// the last node. Killing an unknown node is not an error: it is already gone.
    fn kill_instance(&self, vmid: &str) -> Result<(), CloudError> {
        let (record, mut child) = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match state.nodes.get_mut(vmid) {
                Some(node) => (node.record.clone(), node.child.take()),
                None => return Ok(()),
            }
        };
        stop_processes(&record, child.as_mut());
        remove_network(&record);
        if let Some(child) = &mut child {
            let _ = child.wait();
        }
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        state.nodes.remove(vmid);
        let _ = std::fs::remove_file(self.base.join(vmid).join(RECORD));
        if state.nodes.is_empty() {
            self.remove_bridge(&mut state);
        }
        Ok(())
    }

    fn list_vms(&self) -> Result<Vec<Instance>, CloudError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(state
            .nodes
            .iter_mut()
            .map(|(vmid, node)| Instance {
                vmid: vmid.clone(),
                ip: node.record.ip.clone(),
                private_ip: node.record.ip.clone(),
                state: if node.alive() {
                    InstanceState::Running
                } else {
                    InstanceState::Stopped
                },
            })
            .collect())
    }

    fn gateway(&self) -> Option<String> {
        Some(self.gateway_ip())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn links() -> String {
        ip(&["-o", "link", "show"]).unwrap_or_default()
    }

    #[test]
    fn networks_are_private_slash_24s() {
        assert_eq!(parse_network("10.77.3"), Ok([10, 77, 3]));
        for bad in ["192.168.1", "10.0", "10.0.0.1", "10.300.0", "x"] {
            assert!(parse_network(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn nodes_are_namespaces_that_reach_the_gateway_and_leave_nothing_behind() {
        if let Some(why) = unavailable() {
            eprintln!("skipped: {why}");
            return;
        }
        let base = tempfile::tempdir().unwrap();
        let cloud = NetnsCloud::new("n", base.path(), None).unwrap();
        let gateway = cloud.gateway().unwrap();
        // The script runs inside the namespace: eth0 has the node's address.
        let script = "ip -o -4 addr show dev eth0 > addr\nsleep 600 &\necho $! > child.pid\nwait\n";
        let nodes = cloud.new_instances(2, script).unwrap();
        let dir = base.path().join(&nodes[0].vmid);
        let deadline = Instant::now() + Duration::from_secs(10);
        while !dir.join("child.pid").exists() {
            assert!(Instant::now() < deadline);
            std::thread::sleep(Duration::from_millis(10));
        }
        let addr = std::fs::read_to_string(dir.join("addr")).unwrap();
        assert!(addr.contains(&format!("{}/24", nodes[0].ip)), "{addr}");
        let record = &records(base.path())
            .into_iter()
            .find(|r| r.vmid == nodes[0].vmid)
            .unwrap();
        assert!(links().contains(&record.veth));
        assert!(
            ip(&["netns", "list"]).unwrap().contains(&record.netns),
            "the namespace exists"
        );
        cloud.kill_instance(&nodes[0].vmid).unwrap();
        assert!(!ip(&["netns", "list"]).unwrap().contains(&record.netns));
        assert!(!links().contains(&record.veth));
        assert!(links().contains(&cloud.bridge()), "one node is left");
        drop(cloud);
        // A new driver on the same directory takes the other node over; killing it removes
        // the bridge too.
        let cloud = NetnsCloud::new("n", base.path(), None).unwrap();
        assert_eq!(cloud.list_vms().unwrap().len(), 1);
        assert_eq!(cloud.gateway(), Some(gateway));
        cloud.kill_instance(&nodes[1].vmid).unwrap();
        assert!(!links().contains(&cloud.bridge()));
        assert!(!ip(&["netns", "list"]).unwrap().contains(&cloud.tag));
        assert_eq!(kill_all(base.path()), 0);
    }
}
