//! Managers on real cloud drivers: the `netns` cloud (every node its own network namespace on
//! a bridge, reaching the manager only over it), with the helloworld flow end to end, the
//! checks that nothing (namespace, link, process) is left behind, and the failures that
//! really happen to nodes, injected for real.
//!
//! The netns tests need root and iproute2; without them they say why and do not run.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::managers::{copy_tree, free_port, processes_mentioning, services_dir};
use crate::support::config_tree;
use crate::support::{self, paasm_bin};

/// How long a test waits for an operation to reach a stable state.
const SETTLE: Duration = Duration::from_secs(120);

/// Why the netns tests cannot run here, printed by the test that skips.
fn netns_missing(test: &str) -> bool {
    match paasm::iaas::netns::unavailable() {
        Some(why) => {
            eprintln!("{test}: not run: {why}");
            true
        }
        None => false,
    }
}

/// A manager's files for a cloud: a copy of the tree with the helloworld annex.
pub struct CloudSetup {
    _dir: tempfile::TempDir,
    pub tree: PathBuf,
    pub var: PathBuf,
    pub cloud: String,
}

impl CloudSetup {
    /// A copy of the repository's tree for a manager on `cloud`, whose helloworld manager
    /// annex adds `annex`.
    pub fn new(cloud: &str, annex: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("config");
        copy_tree(&config_tree(), &tree);
        std::fs::write(
            tree.join("manager/helloworld-manager.cfg"),
            format!(
                "AGENT_PORT = {}\nNODE_POLL_INTERVAL_MS = 100\n{annex}\n",
                free_port()
            ),
        )
        .unwrap();
        let var = dir.path().join("var");
        Self {
            _dir: dir,
            tree,
            var,
            cloud: cloud.to_string(),
        }
    }

    /// Appends `text` to the cloud's configuration file.
    pub fn cloud_config(&self, text: &str) {
        let path = self.tree.join(format!("cloud/{}.cfg", self.cloud));
        let mut cfg = std::fs::read_to_string(&path).unwrap();
        cfg.push_str(text);
        std::fs::write(path, cfg).unwrap();
    }

    /// Where the clouds keep their nodes, one directory per cloud.
    pub fn clouds_dir(&self) -> PathBuf {
        self.var.join("var/cache/paasm-manager/nodes")
    }

    /// Runs the manager; its first line or, when it exits, its status and stderr.
    fn spawn(&self) -> Result<(Child, SocketAddr), (Option<i32>, String)> {
        let mut child = Command::new(paasm_bin())
            .arg("manager")
            .args(["--service", "helloworld", "--cloud", &self.cloud])
            // Nodes reach the manager on their cloud's network, not on loopback.
            .args(["--listen", "0.0.0.0:0"])
            .arg("--var")
            .arg(&self.var)
            .arg("--config-dir")
            .arg(&self.tree)
            .arg("--services-dir")
            .arg(services_dir())
            .arg("--cache-dir")
            .arg(support::cache_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn paasm manager");
        let line = support::first_line(&mut child, Duration::from_secs(120));
        let port = line
            .as_deref()
            .and_then(|l| l.strip_prefix("paasm manager listening on http://0.0.0.0:"))
            .and_then(|p| p.parse::<u16>().ok());
        match port {
            Some(port) => Ok((child, SocketAddr::from(([127, 0, 0, 1], port)))),
            None => {
                let _ = child.kill();
                let output = child.wait_with_output().unwrap();
                Err((
                    output.status.code(),
                    String::from_utf8_lossy(&output.stderr).into_owned(),
                ))
            }
        }
    }

    /// Runs a manager that must fail at start: its stderr (its exit status must be 1).
    pub fn spawn_err(&self) -> String {
        match self.spawn() {
            Ok((mut child, _)) => {
                let _ = child.kill();
                let _ = child.wait();
                panic!("the manager started");
            }
            Err((code, err)) => {
                assert_eq!(code, Some(1), "{err}");
                err
            }
        }
    }

    pub fn start(self) -> CloudManager {
        let (child, addr) = self
            .spawn()
            .unwrap_or_else(|(code, err)| panic!("paasm manager exited ({code:?}):\n{err}"));
        CloudManager {
            child,
            addr,
            setup: self,
        }
    }
}

/// A running manager. Dropping it kills the manager and every node, namespace and link left.
pub struct CloudManager {
    child: Child,
    pub addr: SocketAddr,
    pub setup: CloudSetup,
}

impl CloudManager {
    pub fn get(&self, method: &str, params: Option<&Value>) -> Value {
        let reply = support::get(self.addr, method, params);
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }

    pub fn post(&self, method: &str, params: Value) -> Value {
        let reply = support::post(
            self.addr,
            &json!({"method": method, "params": params, "id": "1"}),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }

    pub fn ok(reply: Value) -> Value {
        assert!(reply["error"].is_null(), "{reply}");
        reply["result"].clone()
    }

    pub fn state(&self) -> String {
        Self::ok(self.get("get_service_info", None))["state"]
            .as_str()
            .unwrap()
            .to_string()
    }

    pub fn settle(&self) -> String {
        let deadline = Instant::now() + SETTLE;
        loop {
            let state = self.state();
            if !["PROLOGUE", "ADAPTING", "EPILOGUE"].contains(&state.as_str()) {
                return state;
            }
            assert!(Instant::now() < deadline, "still {state} after {SETTLE:?}");
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// The last reason in the history.
    pub fn last_reason(&self) -> String {
        let history = Self::ok(self.get("get_service_history", None));
        history["state_log"]
            .as_array()
            .unwrap()
            .last()
            .map(|c| c["reason"].as_str().unwrap_or_default().to_string())
            .unwrap_or_default()
    }

    pub fn node_ids(&self) -> Vec<String> {
        Self::ok(self.get("list_nodes", None))["helloworld"]
            .as_array()
            .unwrap()
            .iter()
            .map(|v| v.as_str().unwrap().to_string())
            .collect()
    }

    pub fn node_info(&self, id: &str) -> Value {
        Self::ok(self.get("get_node_info", Some(&json!({"serviceNodeId": id}))))["serviceNode"]
            .clone()
    }

    /// Kills the manager (SIGKILL) and starts it again on the same files.
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, addr) = self
            .setup
            .spawn()
            .unwrap_or_else(|(code, err)| panic!("paasm manager exited ({code:?}):\n{err}"));
        self.child = child;
        self.addr = addr;
    }
}

impl Drop for CloudManager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for cloud in std::fs::read_dir(self.setup.clouds_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            paasm::iaas::netns::kill_all(&cloud.path());
            paasm::iaas::local::kill_all(&cloud.path());
        }
    }
}

/// The netns records of a manager's cloud.
fn netns_records(cloud_dir: &Path) -> Vec<paasm::iaas::netns::NetnsRecord> {
    let mut records = paasm::iaas::netns::records(cloud_dir);
    records.sort_by_key(|r| r.vmid.parse::<u64>().unwrap_or_default());
    records
}

fn ip_out(args: &[&str]) -> String {
    let out = Command::new("ip").args(args).output().unwrap();
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// Every namespace and link whose name mentions `needle`.
fn network_leftovers(needle: &str) -> Vec<String> {
    let mut found: Vec<String> = ip_out(&["netns", "list"])
        .lines()
        .chain(ip_out(&["-o", "link", "show"]).lines())
        .filter(|l| l.contains(needle))
        .map(str::to_string)
        .collect();
    found.sort();
    found
}

/// The tag a cloud's names carry (from its bridge, `pb<tag>`): read off a record's netns.
fn tag_of(record: &paasm::iaas::netns::NetnsRecord) -> String {
    record
        .netns
        .strip_prefix("paasm-")
        .and_then(|r| r.rsplit_once('-'))
        .map(|(tag, _)| tag.to_string())
        .unwrap()
}

/// Whether a command run inside namespace `ns` succeeds.
fn in_netns(ns: &str, command: &str) -> bool {
    Command::new("ip")
        .args(["netns", "exec", ns, "bash", "-c", command])
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .unwrap()
        .success()
}

#[test]
fn the_helloworld_flow_on_network_namespaces() {
    if netns_missing("the_helloworld_flow_on_network_namespaces") {
        return;
    }
    let m = CloudSetup::new("netns", "").start();
    CloudManager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    CloudManager::ok(m.post("add_nodes", json!({"count": 2})));
    assert_eq!(m.settle(), "RUNNING", "{}", m.last_reason());
    assert_eq!(m.node_ids(), ["iaas1", "iaas2"]);

    let dir = m.setup.clouds_dir().join("iaas");
    let records = netns_records(&dir);
    assert_eq!(records.len(), 2);
    let info = m.node_info("iaas1");
    assert_eq!(info["ip"], records[0].ip.as_str());
    assert!(records[0].ip.starts_with("10."), "{records:?}");
    let gateway = format!(
        "{}.1",
        records[0].ip.rsplit_once('.').map(|(net, _)| net).unwrap()
    );
    // The node fetched its code from the manager at the gateway, not on loopback.
    let script = std::fs::read_to_string(dir.join("1/boot.sh")).unwrap();
    let port = m.addr.port();
    assert!(
        script.contains(&format!("SOURCE=http://{gateway}:{port}")),
        "{script}"
    );
    assert_eq!(
        CloudManager::ok(m.get("get_helloworld", None)),
        json!({"helloworld": ["iaas1", "iaas2"]})
    );
    // Inside a node only the cloud's network exists: the manager at the gateway and the other
    // node answer; the manager's loopback address is another machine's.
    let ns = &records[0].netns;
    assert!(in_netns(
        ns,
        &format!("curl -fsS -o /dev/null http://{gateway}:{port}/code/paasm-path")
    ));
    assert!(!in_netns(
        ns,
        &format!("curl -fsS -m 2 -o /dev/null http://127.0.0.1:{port}/code/paasm-path")
    ));
    let agent_port = std::fs::read_to_string(m.setup.tree.join("manager/helloworld-manager.cfg"))
        .unwrap()
        .lines()
        .find_map(|l| l.strip_prefix("AGENT_PORT = ").map(str::to_string))
        .unwrap();
    assert!(in_netns(
        ns,
        &format!(
            "curl -fsS -o /dev/null -H 'Content-Type: application/json' 'http://{}:{agent_port}/?method=check_agent_process&id=1'",
            records[1].ip
        )
    ));

    CloudManager::ok(m.post("remove_nodes", json!({"count": 1})));
    assert_eq!(m.settle(), "RUNNING");
    assert_eq!(m.node_ids(), ["iaas2"]);
    assert!(
        !ip_out(&["netns", "list"]).contains(&records[0].netns),
        "the removed node's namespace is gone"
    );
    assert_eq!(processes_mentioning(&dir.join("1")), Vec::<String>::new());

    CloudManager::ok(m.post("shutdown", json!({})));
    assert_eq!(m.settle(), "STOPPED");
    assert_eq!(
        network_leftovers(&tag_of(&records[0])),
        Vec::<String>::new(),
        "no namespace, veth or bridge is left"
    );
    assert_eq!(processes_mentioning(&dir), Vec::<String>::new());
}

#[test]
fn bad_cloud_configurations_fail_at_start_naming_the_key() {
    let check = |cloud: &str, text: &str, expected: &[&str]| {
        let setup = CloudSetup::new(cloud, "");
        setup.cloud_config(text);
        let err = setup.spawn_err();
        for e in expected {
            assert!(err.contains(e), "{e:?} not in:\n{err}");
        }
    };
    check(
        "netns",
        "NETWORK = 192.168.3\n",
        &[
            "invalid value for \"NETWORK\" in section \"iaas\"",
            "10.77.3",
        ],
    );
    check(
        "netns",
        "OTHER_CLOUDS = far\n[far]\nDRIVER = vmware\n",
        &["invalid value for \"DRIVER\" in section \"far\": unknown cloud driver \"vmware\""],
    );
}

/// Waits until `check` holds, or fails the test with `what`.
fn eventually(what: &str, mut check: impl FnMut() -> bool) {
    let deadline = Instant::now() + Duration::from_secs(30);
    while !check() {
        assert!(Instant::now() < deadline, "never: {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn dead_and_partitioned_nodes_are_marked_unreachable_and_come_back() {
    if netns_missing("dead_and_partitioned_nodes_are_marked_unreachable_and_come_back") {
        return;
    }
    let m = CloudSetup::new("netns", "NODE_HEALTH_INTERVAL_MS = 200\n").start();
    CloudManager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    CloudManager::ok(m.post("add_nodes", json!({"count": 2})));
    assert_eq!(m.settle(), "RUNNING", "{}", m.last_reason());
    let dir = m.setup.clouds_dir().join("iaas");
    let records = netns_records(&dir);
    let unreachable = |m: &CloudManager| -> Vec<String> {
        CloudManager::ok(m.get("list_nodes", None))["unreachable"]
            .as_array()
            .map(|a| a.iter().map(|v| v.as_str().unwrap().to_string()).collect())
            .unwrap_or_default()
    };
    assert_eq!(m.node_info("iaas1")["state"], "running");

    // A partition: the node's link goes down, then up again.
    let link = |state: &str| {
        let ok = Command::new("ip")
            .args(["link", "set", "dev", &records[0].veth, state])
            .status()
            .unwrap()
            .success();
        assert!(ok);
    };
    link("down");
    eventually("iaas1 marked unreachable", || unreachable(&m) == ["iaas1"]);
    let info = m.node_info("iaas1");
    assert_eq!(info["state"], "unreachable");
    assert!(!info["reason"].as_str().unwrap().is_empty(), "{info}");
    assert_eq!(m.state(), "RUNNING");
    link("up");
    eventually("iaas1 reachable again", || unreachable(&m).is_empty());
    assert_eq!(m.node_info("iaas1")["state"], "running");

    // A node whose agent process dies.
    let pid = std::fs::read_to_string(dir.join("2/agent.pid")).unwrap();
    let killed = Command::new("kill")
        .args(["-9", pid.trim()])
        .status()
        .unwrap()
        .success();
    assert!(killed);
    eventually("iaas2 marked unreachable", || unreachable(&m) == ["iaas2"]);
    let log = CloudManager::ok(m.get("get_log", None))["log"]
        .as_str()
        .unwrap()
        .to_string();
    assert!(log.contains("node is unreachable"), "{log}");
    assert!(log.contains("node answers again"), "{log}");
    // The service stays consistent: the dead node can be removed like any other.
    CloudManager::ok(m.post("shutdown", json!({})));
    assert_eq!(m.settle(), "STOPPED");
    assert_eq!(
        network_leftovers(&tag_of(&records[0])),
        Vec::<String>::new()
    );
}

#[test]
fn a_node_that_never_starts_its_agent_fails_the_operation_and_leaves_nothing() {
    if netns_missing("a_node_that_never_starts_its_agent_fails_the_operation_and_leaves_nothing") {
        return;
    }
    let setup = CloudSetup::new("netns", "NODE_BOOT_TIMEOUT = 2\nNODE_START_ATTEMPTS = 2\n");
    // The machine boots, but its agent never starts.
    std::fs::write(
        setup.tree.join("scripts/agent/default-agent-start"),
        "sleep 600 &\nwait\n",
    )
    .unwrap();
    let m = setup.start();
    CloudManager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    CloudManager::ok(m.post("add_nodes", json!({"count": 1})));
    let dir = m.setup.clouds_dir().join("iaas");
    let mut tag = String::new();
    eventually("the node's namespace exists", || {
        if let Some(r) = netns_records(&dir).first() {
            tag = tag_of(r);
        }
        !tag.is_empty()
    });
    assert_eq!(m.settle(), "ERROR");
    let reason = m.last_reason();
    assert!(
        reason.contains("1 of 1 nodes did not start after 2 attempts")
            && reason.contains("did not answer check_agent_process"),
        "{reason}"
    );
    assert!(netns_records(&dir).is_empty());
    assert_eq!(processes_mentioning(&dir), Vec::<String>::new());
    assert_eq!(network_leftovers(&tag), Vec::<String>::new());
}

#[test]
fn a_manager_killed_while_creating_nodes_kills_them_when_it_restarts() {
    if netns_missing("a_manager_killed_while_creating_nodes_kills_them_when_it_restarts") {
        return;
    }
    let setup = CloudSetup::new("netns", "NODE_BOOT_TIMEOUT = 60\n");
    // Agents take a while to start, so the manager dies while it waits for them.
    let start = setup.tree.join("scripts/agent/default-agent-start");
    let text = std::fs::read_to_string(&start).unwrap();
    std::fs::write(&start, format!("sleep 3\n{text}")).unwrap();
    let mut m = setup.start();
    CloudManager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    CloudManager::ok(m.post("add_nodes", json!({"count": 2})));
    let dir = m.setup.clouds_dir().join("iaas");
    eventually("both namespaces exist", || netns_records(&dir).len() == 2);
    let tag = tag_of(&netns_records(&dir)[0]);
    m.kill_and_restart();
    assert_eq!(m.state(), "ERROR");
    assert!(
        m.last_reason().contains("restarted during ADAPTING"),
        "{}",
        m.last_reason()
    );
    // The nodes it asked for but never recorded are gone: processes, namespaces, links.
    assert!(netns_records(&dir).is_empty(), "{:?}", netns_records(&dir));
    assert_eq!(network_leftovers(&tag), Vec::<String>::new());
    assert_eq!(processes_mentioning(&dir), Vec::<String>::new());
    let log = std::fs::read_to_string(m.setup.var.join("var/log/paasm-manager.log")).unwrap();
    assert!(log.contains("never recorded"), "{log}");
    // And it serves on: a new start creates nodes again.
    CloudManager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
}

#[test]
fn one_service_on_two_clouds_at_once() {
    if netns_missing("one_service_on_two_clouds_at_once") {
        return;
    }
    let setup = CloudSetup::new("netns", "");
    setup.cloud_config(
        "OTHER_CLOUDS = , edge \n\n[edge]\nDRIVER = local\nLOOPBACK_PREFIX = 127.0.9\n",
    );
    let m = setup.start();
    assert_eq!(
        CloudManager::ok(m.get("list_clouds", None)),
        json!({"clouds": [{"name": "iaas", "driver": "netns"}, {"name": "edge", "driver": "local"}]})
    );
    CloudManager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    CloudManager::ok(m.post("add_nodes", json!({"count": 1, "cloud": "edge"})));
    assert_eq!(m.settle(), "RUNNING", "{}", m.last_reason());
    CloudManager::ok(m.post("add_nodes", json!({"count": 1})));
    assert_eq!(m.settle(), "RUNNING", "{}", m.last_reason());
    assert_eq!(m.node_ids(), ["edge1", "iaas1"]);
    assert_eq!(m.node_info("edge1")["ip"], "127.0.9.2");
    assert_eq!(m.node_info("edge1")["cloud"], "edge");
    let netns_ip = m.node_info("iaas1")["ip"].as_str().unwrap().to_string();
    assert!(netns_ip.starts_with("10."), "{netns_ip}");
    assert_eq!(m.node_info("iaas1")["cloud"], "iaas");
    // The manager reaches both, each on its own network.
    assert_eq!(
        CloudManager::ok(m.get("get_helloworld", None)),
        json!({"helloworld": ["edge1", "iaas1"]})
    );
    let tag = tag_of(&netns_records(&m.setup.clouds_dir().join("iaas"))[0]);
    CloudManager::ok(m.post("shutdown", json!({})));
    assert_eq!(m.settle(), "STOPPED");
    assert_eq!(network_leftovers(&tag), Vec::<String>::new());
    assert_eq!(
        processes_mentioning(&m.setup.clouds_dir()),
        Vec::<String>::new()
    );
}
