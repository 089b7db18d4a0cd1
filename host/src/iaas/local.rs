//! The `local` cloud, the embedded default: a node is a process tree on this machine.
//!
//! Each node gets a directory under the driver's base directory and its own loopback address
//! (127.0.0.2, 127.0.0.3, ...: Linux routes all of 127.0.0.0/8 to loopback without setup). Its
//! contextualization script runs with bash in that directory, with `NODE_DIR` and `NODE_IP`
//! exported, as the leader of a new process group; killing the node signals the whole group
//! (SIGTERM, then SIGKILL after a grace period), so nothing the script started is left behind.
//!
//! Nodes are machines: they outlive the process that asked for them. Each node directory holds
//! a `node.json` record (id, address, process group), and a driver opened on the same base
//! directory later (a restarted manager) finds the nodes that are still running and can list
//! and kill them. Only [`Cloud::kill_instance`] stops a node.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use serde::{Deserialize, Serialize};

use super::cloud::{Cloud, CloudError, Instance, InstanceState};

/// How long a node's processes get to exit after SIGTERM before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

/// The record of a node in its directory.
const RECORD: &str = "node.json";

/// What a node directory's [`RECORD`] says.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NodeRecord {
    pub vmid: String,
    pub ip: String,
    /// The process group of the node's processes (the boot script's pid).
    pub pgid: i32,
}

struct Node {
    ip: String,
    pgid: i32,
    /// The boot script, when this process started it (to reap it).
    child: Option<Child>,
}

impl Node {
    fn group(&self) -> Pid {
        Pid::from_raw(self.pgid)
    }

    /// Whether any process of the node is left (signal 0 to the group).
    fn alive(&mut self) -> bool {
        if let Some(child) = &mut self.child {
            let _ = child.try_wait();
        }
        killpg(self.group(), None).is_ok()
    }
}

/// The local cloud driver.
pub struct LocalCloud {
    name: String,
    base: PathBuf,
    /// The first three octets of the loopback addresses nodes get (`127.0.0` by default).
    prefix: [u8; 3],
    /// The last octets of the loopback addresses nodes may use.
    octets: std::ops::RangeInclusive<u8>,
    state: Mutex<LocalState>,
}

/// The default loopback network of local nodes.
pub const DEFAULT_PREFIX: [u8; 3] = [127, 0, 0];

/// Parses a loopback network prefix `127.X.Y` (the `LOOPBACK_PREFIX` setting of a local cloud).
pub fn parse_prefix(text: &str) -> Result<[u8; 3], String> {
    let parts: Vec<Option<u8>> = text.trim().split('.').map(|p| p.parse().ok()).collect();
    match parts.as_slice() {
        [Some(127), Some(x), Some(y)] => Ok([127, *x, *y]),
        _ => Err(format!(
            "expected the first three octets of a loopback address, such as 127.0.1, found {text:?}"
        )),
    }
}

#[derive(Default)]
struct LocalState {
    next_vmid: u64,
    nodes: BTreeMap<String, Node>,
}

impl LocalCloud {
    /// A local cloud named `name` keeping its nodes' directories under `base`; nodes a previous
    /// driver started there and that still run are taken over.
    pub fn new(name: &str, base: &Path) -> Self {
        let mut state = LocalState {
            next_vmid: 1,
            nodes: BTreeMap::new(),
        };
        for record in records(base) {
            if let Ok(n) = record.vmid.parse::<u64>() {
                state.next_vmid = state.next_vmid.max(n + 1);
            }
            let mut node = Node {
                ip: record.ip,
                pgid: record.pgid,
                child: None,
            };
            if node.alive() {
                tracing::info!(cloud = name, vmid = %record.vmid, ip = %node.ip, "found running node");
                state.nodes.insert(record.vmid, node);
            }
        }
        Self {
            name: name.to_string(),
            base: base.to_path_buf(),
            prefix: DEFAULT_PREFIX,
            octets: 2..=254,
            state: Mutex::new(state),
        }
    }

    /// The same cloud, giving nodes addresses in `prefix.2` to `prefix.254` (so two local
    /// clouds on one machine never hand out the same address).
    pub fn with_prefix(mut self, prefix: [u8; 3]) -> Self {
        self.prefix = prefix;
        self
    }

    fn error(&self, message: String) -> CloudError {
        CloudError {
            cloud: self.name.clone(),
            message,
        }
    }

    fn free_ip(&self, state: &LocalState) -> Option<String> {
        self.octets
            .clone()
            .map(|o| {
                let [a, b, c] = self.prefix;
                format!("{a}.{b}.{c}.{o}")
            })
            .find(|ip| !state.nodes.values().any(|n| &n.ip == ip))
    }

    fn boot(&self, vmid: &str, ip: &str, script: &str) -> Result<Child, CloudError> {
        let dir = self.base.join(vmid);
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
        let child = std::os::unix::process::CommandExt::process_group(
            Command::new("bash")
                .arg(&script_path)
                .current_dir(&dir)
                .env("NODE_DIR", &dir)
                .env("NODE_IP", ip)
                .stdin(Stdio::null())
                .stdout(log("boot.out")?)
                .stderr(log("boot.err")?),
            0,
        )
        .spawn()
        .map_err(|e| self.error(format!("cannot run bash for node {vmid}: {e}")))?;
        let record = NodeRecord {
            vmid: vmid.to_string(),
            ip: ip.to_string(),
            pgid: child.id() as i32,
        };
        let written = serde_json::to_vec(&record)
            .map_err(std::io::Error::other)
            .and_then(|bytes| std::fs::write(dir.join(RECORD), bytes));
        if let Err(e) = written {
            let _ = killpg(Pid::from_raw(record.pgid), Signal::SIGKILL);
            return Err(self.error(format!("cannot record node {vmid}: {e}")));
        }
        Ok(child)
    }

    fn start_one(&self, script: &str) -> Result<Instance, CloudError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let Some(ip) = self.free_ip(&state) else {
            return Err(self.error(format!(
                "no free loopback address for another node ({} running)",
                state.nodes.len()
            )));
        };
        let vmid = state.next_vmid.to_string();
        state.next_vmid += 1;
        let child = self.boot(&vmid, &ip, script)?;
        state.nodes.insert(
            vmid.clone(),
            Node {
                ip: ip.clone(),
                pgid: child.id() as i32,
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

/// The node records under `base`, in no particular order; unreadable ones are skipped.
pub fn records(base: &Path) -> Vec<NodeRecord> {
    std::fs::read_dir(base)
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|entry| std::fs::read(entry.path().join(RECORD)).ok())
        .filter_map(|bytes| serde_json::from_slice(&bytes).ok())
        .collect()
}

/// Kills every node recorded under `base` that still runs, whoever started it (a safety net
/// for operators and tests: a manager that died without shutting down leaves its nodes).
pub fn kill_all(base: &Path) -> usize {
    let cloud = LocalCloud::new("local", base);
    let vmids: Vec<String> = cloud
        .state
        .lock()
        .unwrap_or_else(|e| e.into_inner())
        .nodes
        .keys()
        .cloned()
        .collect();
    vmids
        .iter()
        .filter(|vmid| cloud.kill_instance(vmid).is_ok())
        .count()
}

impl Cloud for LocalCloud {
    fn name(&self) -> &str {
        &self.name
    }

    /// Starts all `count` nodes or none: when one cannot start, the ones this call already
    /// started are killed before the error is returned.
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

    /// Kills the node's whole process group (SIGTERM, then SIGKILL after a grace period) and
    /// only then forgets it. Killing a node this driver does not know is not an error: it is
    /// already gone (as with real clouds, termination is idempotent).
    fn kill_instance(&self, vmid: &str) -> Result<(), CloudError> {
        let group = {
            let state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            match state.nodes.get(vmid) {
                Some(node) => node.group(),
                None => {
                    tracing::debug!(cloud = %self.name, vmid, "kill of an unknown node: already gone");
                    return Ok(());
                }
            }
        };
        // The group outlives its leader when the script started background processes.
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + KILL_GRACE;
        let mut gone = false;
        while Instant::now() < deadline {
            let alive = {
                let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
                state.nodes.get_mut(vmid).is_some_and(Node::alive)
            };
            if !alive {
                gone = true;
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        if !gone {
            let _ = killpg(group, Signal::SIGKILL);
        }
        let node = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state.nodes.remove(vmid)
        };
        if let Some(mut child) = node.and_then(|n| n.child) {
            let _ = child.wait();
        }
        let _ = std::fs::remove_file(self.base.join(vmid).join(RECORD));
        Ok(())
    }

    fn list_vms(&self) -> Result<Vec<Instance>, CloudError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(state
            .nodes
            .iter_mut()
            .map(|(vmid, node)| Instance {
                vmid: vmid.clone(),
                ip: node.ip.clone(),
                private_ip: node.ip.clone(),
                state: if node.alive() {
                    InstanceState::Running
                } else {
                    InstanceState::Stopped
                },
            })
            .collect())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn group_alive(pid_file: &Path) -> bool {
        let pid: i32 = std::fs::read_to_string(pid_file)
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        nix::sys::signal::kill(Pid::from_raw(pid), None).is_ok()
    }

    fn wait_for(path: &Path) {
        let deadline = Instant::now() + Duration::from_secs(10);
        while !path.exists() {
            assert!(
                Instant::now() < deadline,
                "{} never appeared",
                path.display()
            );
            std::thread::sleep(Duration::from_millis(10));
        }
    }

    #[test]
    fn nodes_boot_from_their_script_and_die_with_their_whole_tree() {
        let base = tempfile::tempdir().unwrap();
        let cloud = LocalCloud::new("local", base.path());
        // The script starts a background process, as a start script starts the agent.
        let script = "echo \"$NODE_IP\" > ip\nsleep 600 &\necho $! > child.pid\nwait\n";
        let nodes = cloud.new_instances(2, script).unwrap();
        assert_eq!(nodes.len(), 2);
        assert_eq!(nodes[0].ip, "127.0.0.2");
        assert_eq!(nodes[1].ip, "127.0.0.3");
        let dir = base.path().join(&nodes[0].vmid);
        wait_for(&dir.join("child.pid"));
        assert_eq!(
            std::fs::read_to_string(dir.join("ip")).unwrap().trim(),
            "127.0.0.2"
        );
        assert!(group_alive(&dir.join("child.pid")));
        let listed = cloud.list_vms().unwrap();
        assert!(
            listed.iter().all(|i| i.state == InstanceState::Running),
            "{listed:?}"
        );

        cloud.kill_instance(&nodes[0].vmid).unwrap();
        assert!(
            !group_alive(&dir.join("child.pid")),
            "the background child is gone too"
        );
        assert_eq!(cloud.list_vms().unwrap().len(), 1);
        // Its address is free again.
        let again = cloud.new_instances(1, script).unwrap();
        assert_eq!(again[0].ip, "127.0.0.2");
        // Killing twice (or killing what is not there) is not an error.
        cloud.kill_instance(&nodes[0].vmid).unwrap();
        cloud.kill_instance("nope").unwrap();

        let other = base.path().join(&nodes[1].vmid).join("child.pid");
        wait_for(&other);
        drop(cloud);
        assert!(
            group_alive(&other),
            "nodes outlive the driver that started them"
        );
        // A new driver on the same directory takes them over and numbers on from them.
        let cloud = LocalCloud::new("local", base.path());
        let listed = cloud.list_vms().unwrap();
        let vmids: Vec<&str> = listed.iter().map(|i| i.vmid.as_str()).collect();
        assert_eq!(vmids, [nodes[1].vmid.as_str(), again[0].vmid.as_str()]);
        assert_eq!(listed[0].ip, "127.0.0.3");
        let next = cloud.new_instances(1, script).unwrap();
        assert_eq!(next[0].vmid, "4");
        cloud.kill_instance(&nodes[1].vmid).unwrap();
        assert!(!group_alive(&other));
        assert_eq!(kill_all(base.path()), 2);
        assert!(
            LocalCloud::new("local", base.path())
                .list_vms()
                .unwrap()
                .is_empty()
        );
    }

    #[test]
    fn a_request_that_cannot_be_met_starts_nothing() {
        let base = tempfile::tempdir().unwrap();
        let mut cloud = LocalCloud::new("local", base.path());
        cloud.octets = 2..=3;
        let err = cloud
            .new_instances(3, "sleep 600\n")
            .unwrap_err()
            .to_string();
        assert!(err.contains("no free loopback address"), "{err}");
        assert!(
            cloud.list_vms().unwrap().is_empty(),
            "the two nodes it started are gone"
        );
        assert_eq!(cloud.new_instances(2, "sleep 600\n").unwrap().len(), 2);
        assert_eq!(kill_all(base.path()), 2);
    }

    #[test]
    fn a_cloud_can_have_its_own_loopback_network() {
        assert_eq!(parse_prefix("127.0.1"), Ok([127, 0, 1]));
        for bad in ["10.0.0", "127.0", "127.0.0.1", "127.0.256", "x"] {
            assert!(parse_prefix(bad).is_err(), "{bad}");
        }
        let base = tempfile::tempdir().unwrap();
        let cloud = LocalCloud::new("second", base.path()).with_prefix([127, 0, 1]);
        let nodes = cloud.new_instances(1, "sleep 600\n").unwrap();
        assert_eq!(nodes[0].ip, "127.0.1.2");
        assert_eq!(kill_all(base.path()), 1);
    }

    #[test]
    fn a_script_that_exits_shows_as_stopped() {
        let base = tempfile::tempdir().unwrap();
        let cloud = LocalCloud::new("local", base.path());
        let nodes = cloud.new_instances(1, "exit 3\n").unwrap();
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let listed = cloud.list_vms().unwrap();
            if listed[0].state == InstanceState::Stopped {
                break;
            }
            assert!(Instant::now() < deadline, "{listed:?}");
            std::thread::sleep(Duration::from_millis(20));
        }
        cloud.kill_instance(&nodes[0].vmid).unwrap();
    }
}
