//! The `local` cloud, the embedded default: a node is a process tree on this machine.
//!
//! Each node gets a directory under the driver's base directory and its own loopback address
//! (127.0.0.2, 127.0.0.3, ...: Linux routes all of 127.0.0.0/8 to loopback without setup). Its
//! contextualization script runs with bash in that directory, with `NODE_DIR` and `NODE_IP`
//! exported, as the leader of a new process group; killing the node signals the whole group
//! (SIGTERM, then SIGKILL after a grace period), so nothing the script started is left behind.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use super::cloud::{Cloud, CloudError, Instance, InstanceState};

/// How long a node's processes get to exit after SIGTERM before SIGKILL.
const KILL_GRACE: Duration = Duration::from_secs(5);

struct Node {
    ip: String,
    child: Child,
}

/// The local cloud driver.
pub struct LocalCloud {
    name: String,
    base: PathBuf,
    /// The last octets of the loopback addresses nodes may use.
    octets: std::ops::RangeInclusive<u8>,
    state: Mutex<LocalState>,
}

#[derive(Default)]
struct LocalState {
    next_vmid: u64,
    nodes: BTreeMap<String, Node>,
}

impl LocalCloud {
    /// A local cloud named `name` keeping its nodes' directories under `base`.
    pub fn new(name: &str, base: &Path) -> Self {
        Self {
            name: name.to_string(),
            base: base.to_path_buf(),
            octets: 2..=254,
            state: Mutex::new(LocalState {
                next_vmid: 1,
                nodes: BTreeMap::new(),
            }),
        }
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
            .map(|o| format!("127.0.0.{o}"))
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
        std::os::unix::process::CommandExt::process_group(
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
        .map_err(|e| self.error(format!("cannot run bash for node {vmid}: {e}")))
    }
}

impl LocalCloud {
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
                child,
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

    fn kill_instance(&self, vmid: &str) -> Result<(), CloudError> {
        let mut node = {
            let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
            state
                .nodes
                .remove(vmid)
                .ok_or_else(|| self.error(format!("no node {vmid}")))?
        };
        let group = Pid::from_raw(node.child.id() as i32);
        // The group outlives its leader when the script started background processes.
        let _ = killpg(group, Signal::SIGTERM);
        let deadline = Instant::now() + KILL_GRACE;
        while Instant::now() < deadline {
            let _ = node.child.try_wait();
            // Signal 0 probes whether any process of the group is left.
            if killpg(group, None).is_err() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let _ = killpg(group, Signal::SIGKILL);
        let _ = node.child.wait();
        Ok(())
    }

    fn list_vms(&self) -> Result<Vec<Instance>, CloudError> {
        let mut state = self.state.lock().unwrap_or_else(|e| e.into_inner());
        Ok(state
            .nodes
            .iter_mut()
            .map(|(vmid, node)| {
                let group = Pid::from_raw(node.child.id() as i32);
                let _ = node.child.try_wait();
                let alive = killpg(group, None).is_ok();
                Instance {
                    vmid: vmid.clone(),
                    ip: node.ip.clone(),
                    private_ip: node.ip.clone(),
                    state: if alive {
                        InstanceState::Running
                    } else {
                        InstanceState::Stopped
                    },
                }
            })
            .collect())
    }
}

impl Drop for LocalCloud {
    fn drop(&mut self) {
        let vmids: Vec<String> = self
            .state
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .nodes
            .keys()
            .cloned()
            .collect();
        for vmid in vmids {
            let _ = self.kill_instance(&vmid);
        }
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
        assert!(
            cloud
                .kill_instance("nope")
                .unwrap_err()
                .to_string()
                .contains("no node nope")
        );

        let other = base.path().join(&nodes[1].vmid).join("child.pid");
        wait_for(&other);
        drop(cloud);
        assert!(!group_alive(&other), "dropping the driver kills its nodes");
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
