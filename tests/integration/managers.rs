//! Running `paasm manager` for real: a manager process serving the helloworld manager
//! component, creating real agent nodes on the local cloud (process trees on loopback
//! addresses booted from the generated contextualization scripts), talking to them, and
//! recovering its service after being killed.
//!
//! Every manager gets its own copy of the configuration tree, with a `<service>-manager.cfg`
//! annex choosing a free agent port (so tests running at once never share an agent address)
//! and short timeouts where a test needs them.
//!
//! The manager conformance suite keeps the helloworld flow and the seed's error strings as
//! data in `tests/conformance/manager/`, run unchanged against every helloworld manager: the
//! Rust one (`helloworld`), the Python one (`helloworld-py`), the JavaScript one
//! (`helloworld-js`), the Go one (`helloworld-go`) and the C one (`helloworld-c`). A case file has a `name` and
//! `[[step]]`s, each one of:
//!
//! - `get = "METHOD"` or `post = "METHOD"`, with optional `params` (a table), then `result`
//!   (the result must equal it), `contains` (the result must contain every key given,
//!   recursively), `error` (the error string must equal it) or `error_prefix`;
//! - `upload = "METHOD"` with `files = { FIELD = "CONTENT" }`, checked the same way;
//! - `settle = "STATE"`: waits until the state is stable, which must be `STATE`;
//! - `state_in = ["STATE", ...]`: the state right now is one of these;
//! - `log_contains = ["TEXT", ...]`: the manager's log (`get_log`) contains each;
//! - `history = ["STATE", ...]`: the states of `get_service_history`, oldest first;
//! - `history_len = N`: how many entries the history has;
//! - `node_processes = { node = "VMID", running = BOOL }`: whether any process of that local
//!   node is running (`node = ""`: of any node of the service);
//! - `agent_code = "VMID"`: that node fetched and runs the agent component its package names.
//!
//! In every string, `${SERVICE}` stands for the service under test.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::conformance::{case_files, case_json, contains};
use crate::support::{self, config_tree, paasm_bin};

/// How long a test waits for an operation to reach a stable state.
const SETTLE: Duration = Duration::from_secs(120);

/// The assembled service packages.
pub fn services_dir() -> PathBuf {
    std::env::var_os("PAASM_SERVICES_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| support::target_dir().join("services"))
}

pub fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let dest = to.join(entry.file_name());
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &dest);
        } else {
            std::fs::copy(entry.path(), dest).unwrap();
        }
    }
}

/// A port nothing listens on right now.
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

/// A manager's files: its configuration tree and VAR directory.
pub struct ManagerSetup {
    /// Holds the files until the test ends.
    _dir: tempfile::TempDir,
    /// The service package the manager runs.
    pub service: String,
    /// The installed packages it finds it in (by default the ones `build-guests` assembled).
    pub services: PathBuf,
    pub tree: PathBuf,
    pub var: PathBuf,
}

impl ManagerSetup {
    /// A copy of the repository's tree whose helloworld manager annex adds `annex`.
    pub fn new(annex: &str) -> Self {
        Self::for_service("helloworld", annex)
    }

    /// A copy of the repository's tree whose annex for `service`'s manager adds `annex`.
    pub fn for_service(service: &str, annex: &str) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let tree = dir.path().join("config");
        copy_tree(&config_tree(), &tree);
        let port = free_port();
        std::fs::write(
            tree.join(format!("manager/{service}-manager.cfg")),
            format!("AGENT_PORT = {port}\nNODE_POLL_INTERVAL_MS = 100\n{annex}\n"),
        )
        .unwrap();
        let var = dir.path().join("var");
        Self {
            _dir: dir,
            service: service.to_string(),
            services: services_dir(),
            tree,
            var,
        }
    }

    /// Where the default (local) cloud keeps the nodes' directories.
    pub fn nodes_dir(&self) -> PathBuf {
        self.clouds_dir().join("iaas")
    }

    /// Where every cloud of the manager keeps its nodes, one directory per cloud.
    pub fn clouds_dir(&self) -> PathBuf {
        self.var.join("var/cache/paasm-manager/nodes")
    }

    /// The directory of node `vmid`.
    pub fn node_dir(&self, vmid: &str) -> PathBuf {
        self.nodes_dir().join(vmid)
    }

    fn spawn(&self) -> (Child, SocketAddr) {
        let mut child = Command::new(paasm_bin())
            .arg("manager")
            .args(["--service", &self.service, "--listen", "127.0.0.1:0"])
            .arg("--var")
            .arg(&self.var)
            .arg("--config-dir")
            .arg(&self.tree)
            .arg("--services-dir")
            .arg(&self.services)
            .arg("--cache-dir")
            .arg(support::cache_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn paasm manager");
        let line = support::first_line(&mut child, Duration::from_secs(120));
        let addr = line
            .as_deref()
            .and_then(|l| l.strip_prefix("paasm manager listening on http://"))
            .and_then(|a| a.parse().ok());
        match addr {
            Some(addr) => (child, addr),
            None => {
                let _ = child.kill();
                let output = child.wait_with_output().unwrap();
                panic!(
                    "paasm manager did not start ({line:?}); stderr:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
    }

    pub fn start(self) -> Manager {
        let (child, addr) = self.spawn();
        Manager {
            child,
            addr,
            setup: self,
        }
    }
}

/// A running manager. Dropping it kills the manager and every node it left.
pub struct Manager {
    child: Child,
    pub addr: SocketAddr,
    pub setup: ManagerSetup,
}

impl Manager {
    /// Calls a GET method; the whole ConPaaS reply envelope.
    pub fn get(&self, method: &str, params: Option<&Value>) -> Value {
        let reply = support::get(self.addr, method, params);
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }

    /// Calls a POST method; the whole ConPaaS reply envelope.
    pub fn post(&self, method: &str, params: Value) -> Value {
        let reply = support::post(
            self.addr,
            &json!({"method": method, "params": params, "id": "1"}),
        );
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    }

    /// The result of a successful call (the test fails on an error reply).
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

    /// Waits until the state is stable and returns it.
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

    /// The states of the history, oldest first.
    pub fn history(&self) -> Vec<(String, String)> {
        Self::ok(self.get("get_service_history", None))["state_log"]
            .as_array()
            .unwrap()
            .iter()
            .map(|c| {
                (
                    c["state"].as_str().unwrap().to_string(),
                    c["reason"].as_str().unwrap().to_string(),
                )
            })
            .collect()
    }

    pub fn log(&self) -> String {
        Self::ok(self.get("get_log", None))["log"]
            .as_str()
            .unwrap()
            .to_string()
    }

    /// Kills the manager process (SIGKILL: no chance to clean up) and starts it again on the
    /// same files.
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, addr) = self.setup.spawn();
        self.child = child;
        self.addr = addr;
    }
}

impl Drop for Manager {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        for cloud in std::fs::read_dir(self.setup.clouds_dir())
            .into_iter()
            .flatten()
            .flatten()
        {
            paasm::iaas::local::kill_all(&cloud.path());
        }
    }
}

/// The processes whose command line mentions `needle`.
pub fn processes_mentioning(needle: &Path) -> Vec<String> {
    let needle = needle.display().to_string();
    let mut found = Vec::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        if !entry
            .file_name()
            .to_string_lossy()
            .chars()
            .all(|c| c.is_ascii_digit())
        {
            continue;
        }
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        let cmdline = String::from_utf8_lossy(&cmdline).replace('\0', " ");
        if cmdline.contains(&needle) {
            found.push(cmdline);
        }
    }
    found
}

fn node_ids(list: &Value) -> Vec<String> {
    list["helloworld"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn the_helloworld_flow_from_startup_to_shutdown() {
    let m = ManagerSetup::new("").start();
    assert_eq!(
        Manager::ok(m.get("get_service_info", None)),
        json!({"state": "INIT", "type": "helloworld"})
    );
    assert_eq!(Manager::ok(m.post("startup", json!({}))), json!({}));
    assert_eq!(m.settle(), "RUNNING");
    // startup itself creates no node, as in the seed.
    assert_eq!(
        Manager::ok(m.get("list_nodes", None)),
        json!({"helloworld": []})
    );

    assert_eq!(
        Manager::ok(m.post("add_nodes", json!({"count": 2}))),
        json!({})
    );
    let state = m.state();
    assert!(["ADAPTING", "RUNNING"].contains(&state.as_str()), "{state}");
    assert_eq!(m.settle(), "RUNNING");
    let ids = node_ids(&Manager::ok(m.get("list_nodes", None)));
    assert_eq!(ids, ["iaas1", "iaas2"]);
    let info = Manager::ok(m.get("get_node_info", Some(&json!({"serviceNodeId": "iaas2"}))));
    assert_eq!(info["serviceNode"]["id"], "iaas2");
    assert_eq!(info["serviceNode"]["ip"], "127.0.0.3");
    assert_eq!(info["serviceNode"]["role"], "helloworld");

    // The manager asks every agent; each answered its configured string.
    let hello = Manager::ok(m.get("get_helloworld", None));
    assert_eq!(hello, json!({"helloworld": ["iaas1", "iaas2"]}));
    let log = m.log();
    assert!(log.contains("Received helloworld from iaas1"), "{log}");
    assert!(log.contains("Received helloworld from iaas2"), "{log}");

    // Each node booted from the generated script: the service annex with the manager's
    // $STRING replacement, and the code fetched from the manager.
    let script = std::fs::read_to_string(m.setup.node_dir("1").join("boot.sh")).unwrap();
    assert!(
        script.contains("STRING_TO_GENERATE = helloworld\n"),
        "{script}"
    );
    assert!(
        script.contains(&format!("SOURCE=http://{}", m.addr)),
        "{script}"
    );
    let fetched = std::fs::read(m.setup.node_dir("1").join("paasm/agent.wasm")).unwrap();
    assert_eq!(
        fetched,
        std::fs::read(support::component("helloworld-agent")).unwrap()
    );

    assert_eq!(
        Manager::ok(m.post("remove_nodes", json!({"count": 1}))),
        json!({})
    );
    assert_eq!(m.settle(), "RUNNING");
    // The oldest node goes first, as in the seed.
    assert_eq!(node_ids(&Manager::ok(m.get("list_nodes", None))), ["iaas2"]);
    assert_eq!(
        processes_mentioning(&m.setup.node_dir("1")),
        Vec::<String>::new(),
        "the removed node's agent is gone"
    );
    assert!(!processes_mentioning(&m.setup.node_dir("2")).is_empty());

    assert_eq!(Manager::ok(m.post("shutdown", json!({}))), json!({}));
    assert_eq!(m.settle(), "STOPPED");
    assert_eq!(
        processes_mentioning(&m.setup.nodes_dir()),
        Vec::<String>::new(),
        "no agent process is left behind"
    );
    let states: Vec<String> = m.history().into_iter().map(|(s, _)| s).collect();
    assert_eq!(
        states,
        [
            "INIT", "PROLOGUE", "RUNNING", "ADAPTING", "RUNNING", "ADAPTING", "RUNNING",
            "EPILOGUE", "STOPPED"
        ]
    );
    // A stopped service can start again.
    Manager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    assert_eq!(
        Manager::ok(m.get("list_nodes", None)),
        json!({"helloworld": []})
    );
}

#[test]
fn generic_methods_answer_with_the_seeds_error_strings() {
    let m = ManagerSetup::new("").start();
    let error = |reply: Value| -> String {
        assert!(reply.get("result").is_none(), "{reply}");
        reply["error"].as_str().unwrap().to_string()
    };
    assert_eq!(
        error(m.post("add_nodes", json!({"count": 1}))),
        "ERROR: Wrong state to add_nodes"
    );
    assert_eq!(
        error(m.post("remove_nodes", json!({"count": 1}))),
        "ERROR: Wrong state to remove_nodes"
    );
    assert_eq!(
        error(m.get("list_nodes", None)),
        "ERROR: Wrong state to list_nodes"
    );
    assert_eq!(
        error(m.get("get_helloworld", None)),
        "ERROR: Wrong state to get_helloworld"
    );
    assert_eq!(
        error(m.get("get_service_info", Some(&json!({"x": 1})))),
        "ERROR: Arguments unexpected"
    );
    assert_eq!(
        error(m.post("startup", json!({"cloud": "ec2"}))),
        "A cloud named 'ec2' could not be found"
    );

    Manager::ok(m.post("startup", json!({"cloud": "default"})));
    assert_eq!(m.settle(), "RUNNING");
    assert_eq!(
        error(m.post("startup", json!({}))),
        "ERROR: cannot perform startup in state RUNNING"
    );
    for method in ["add_nodes", "remove_nodes"] {
        assert_eq!(
            error(m.post(method, json!({}))),
            "ERROR: Required argument doesn't exist"
        );
        assert_eq!(
            error(m.post(method, json!({"count": "2"}))),
            "ERROR: Expected an integer value for \"count\""
        );
        assert_eq!(
            error(m.post(method, json!({"count": 1.5}))),
            "ERROR: Expected an integer value for \"count\""
        );
        let negative = error(m.post(method, json!({"count": -1})));
        assert!(
            negative.starts_with("ERROR: Expected a positive integer value for \"count\""),
            "{negative}"
        );
    }
    assert_eq!(
        error(m.post("remove_nodes", json!({"count": 3}))),
        "ERROR: Cannot remove 3 nodes: the service has 0"
    );
    assert_eq!(
        error(m.post("add_nodes", json!({"count": 1, "cloud": "ec2"}))),
        "ERROR: Unknown cloud: ec2. Available clouds: iaas"
    );
    assert_eq!(
        error(m.get("get_node_info", None)),
        "ERROR: Missing arguments"
    );
    assert_eq!(
        error(m.get("get_node_info", Some(&json!({"serviceNodeId": "iaas9"})))),
        "ERROR: Invalid arguments"
    );
    // GET methods are not POST methods, as in the original server.
    let reply = support::post(
        m.addr,
        &json!({"method": "get_service_info", "params": {}, "id": 1}),
    );
    assert_eq!(reply.status, 404);
    // None of it changed anything.
    assert_eq!(m.state(), "RUNNING");
    assert_eq!(m.history().len(), 3);
}

#[test]
fn a_node_that_never_answers_is_replaced_then_the_service_fails_with_the_reason() {
    let setup = ManagerSetup::new("NODE_BOOT_TIMEOUT = 2\nNODE_START_ATTEMPTS = 2");
    // A service-specific start script replaces the default one: this one never starts the
    // agent, so its node never answers check_agent_process.
    std::fs::write(
        setup.tree.join("scripts/agent/helloworld-agent-start"),
        "# never starts the agent\nsleep 600 &\necho $! > \"$ROOT_DIR/never.pid\"\n",
    )
    .unwrap();
    let m = setup.start();
    Manager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    // Through the command-line client: it follows the operation and fails with the reason.
    let (ok, _, stderr) = paasm_call(&m, &["add_nodes", "count=1", "--wait"]);
    assert!(!ok, "{stderr}");
    assert!(
        stderr.contains("state: ERROR: add_nodes failed: 1 of 1 nodes did not start"),
        "{stderr}"
    );
    assert_eq!(m.state(), "ERROR");
    let (state, reason) = m.history().pop().unwrap();
    assert_eq!(state, "ERROR");
    assert!(
        reason.starts_with("add_nodes failed: 1 of 1 nodes did not start after 2 attempts"),
        "{reason}"
    );
    // Both attempts are named, each with why it failed.
    assert!(
        reason.contains("node iaas1 (127.0.0.2) did not answer check_agent_process"),
        "{reason}"
    );
    assert!(
        reason.contains("node iaas2 (127.0.0.2) did not answer check_agent_process"),
        "{reason}"
    );
    for vmid in ["1", "2"] {
        let dir = m.setup.node_dir(vmid);
        let script = std::fs::read_to_string(dir.join("boot.sh")).unwrap();
        assert!(script.contains("# never starts the agent"), "{script}");
        assert!(
            !script.contains("default-agent-start") && !script.contains("paasm\" agent"),
            "{script}"
        );
        let pid: i32 = std::fs::read_to_string(dir.join("never.pid"))
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        assert!(
            !Path::new(&format!("/proc/{pid}")).exists()
                || std::fs::read_to_string(format!("/proc/{pid}/stat"))
                    .unwrap_or_default()
                    .contains(") Z "),
            "the failed node's processes are killed"
        );
    }
    // The manager keeps serving, with no node, and can be shut down.
    assert!(Manager::ok(m.get("get_service_info", None))["state"] == "ERROR");
    Manager::ok(m.post("shutdown", json!({})));
    assert_eq!(m.settle(), "STOPPED");
}

/// Runs `paasm call <manager> ARGS`: whether it succeeded, its stdout and its stderr.
fn paasm_call(m: &Manager, args: &[&str]) -> (bool, String, String) {
    let output = Command::new(paasm_bin())
        .arg("call")
        .arg(format!("http://{}/", m.addr))
        .args(args)
        .output()
        .unwrap();
    (
        output.status.success(),
        String::from_utf8_lossy(&output.stdout).into_owned(),
        String::from_utf8_lossy(&output.stderr).into_owned(),
    )
}

#[test]
fn the_command_line_client_drives_a_manager() {
    let m = ManagerSetup::new("").start();
    let (ok, stdout, stderr) = paasm_call(&m, &["startup", "--wait"]);
    assert!(ok, "{stderr}");
    assert_eq!(stdout.trim(), "{}");
    assert!(stderr.contains("state: RUNNING"), "{stderr}");
    // `--wait` returns only once the nodes answer.
    let (ok, _, stderr) = paasm_call(&m, &["add_nodes", "count=2", "--wait"]);
    assert!(ok, "{stderr}");
    let (ok, stdout, _) = paasm_call(&m, &["list_nodes"]);
    assert!(ok);
    let listed: Value = serde_json::from_str(&stdout).unwrap();
    assert_eq!(listed, json!({"helloworld": ["iaas1", "iaas2"]}));
    let (ok, stdout, _) = paasm_call(&m, &["get_node_info", "{\"serviceNodeId\": \"iaas2\"}"]);
    assert!(ok);
    assert!(stdout.contains("\"ip\": \"127.0.0.3\""), "{stdout}");
    // The seed's errors, and methods that do not exist, fail with status 1.
    let (ok, _, stderr) = paasm_call(&m, &["add_nodes", "count=two"]);
    assert!(!ok);
    assert!(
        stderr.contains("ERROR: Expected an integer value for \"count\""),
        "{stderr}"
    );
    let (ok, _, stderr) = paasm_call(&m, &["add_node", "count=1"]);
    assert!(!ok);
    assert!(
        stderr.contains("has no method \"add_node\"") && stderr.contains("add_nodes"),
        "{stderr}"
    );
    let (ok, _, stderr) = paasm_call(&m, &["shutdown", "--wait"]);
    assert!(ok, "{stderr}");
    assert!(stderr.contains("state: STOPPED"), "{stderr}");
}

#[test]
fn a_dead_agent_is_named_and_the_manager_keeps_serving() {
    let m = ManagerSetup::new("AGENT_CALL_TIMEOUT = 5").start();
    Manager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    Manager::ok(m.post("add_nodes", json!({"count": 2})));
    assert_eq!(m.settle(), "RUNNING");
    let pid = std::fs::read_to_string(m.setup.node_dir("1").join("agent.pid")).unwrap();
    let status = Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .unwrap();
    assert!(status.success());
    let reply = m.get("get_helloworld", None);
    let error = reply["error"].as_str().unwrap_or_else(|| panic!("{reply}"));
    assert!(error.contains("iaas1"), "{error}");
    assert!(!error.contains("iaas2"), "{error}");
    assert_eq!(m.state(), "RUNNING");
    assert_eq!(
        node_ids(&Manager::ok(m.get("list_nodes", None))),
        ["iaas1", "iaas2"]
    );
}

#[test]
fn a_killed_manager_comes_back_with_its_state_and_nodes() {
    let mut m = ManagerSetup::new("").start();
    Manager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    Manager::ok(m.post("add_nodes", json!({"count": 2})));
    assert_eq!(m.settle(), "RUNNING");
    let before = m.history();

    m.kill_and_restart();
    assert_eq!(m.state(), "RUNNING");
    assert_eq!(m.history(), before);
    assert_eq!(
        node_ids(&Manager::ok(m.get("list_nodes", None))),
        ["iaas1", "iaas2"]
    );
    // The nodes kept running and the new manager process reaches them.
    assert_eq!(
        Manager::ok(m.get("get_helloworld", None)),
        json!({"helloworld": ["iaas1", "iaas2"]})
    );
    Manager::ok(m.post("add_nodes", json!({"count": 1})));
    assert_eq!(m.settle(), "RUNNING");
    assert_eq!(
        node_ids(&Manager::ok(m.get("list_nodes", None))),
        ["iaas1", "iaas2", "iaas3"]
    );
    // Killed in the middle of an operation, it never stays transient.
    Manager::ok(m.post("remove_nodes", json!({"count": 1})));
    m.kill_and_restart();
    let state = m.state();
    assert!(["RUNNING", "ERROR"].contains(&state.as_str()), "{state}");
    Manager::ok(m.post("shutdown", json!({})));
    assert_eq!(m.settle(), "STOPPED");
    assert_eq!(
        processes_mentioning(&m.setup.nodes_dir()),
        Vec::<String>::new()
    );
}

#[test]
fn nodes_go_to_the_cloud_they_are_asked_for() {
    let setup = ManagerSetup::new("");
    let cloud_cfg = setup.tree.join("cloud/local.cfg");
    let mut text = std::fs::read_to_string(&cloud_cfg).unwrap();
    text.push_str("OTHER_CLOUDS = edge\n\n[edge]\nDRIVER = local\nLOOPBACK_PREFIX = 127.0.7\n");
    std::fs::write(&cloud_cfg, text).unwrap();
    let m = setup.start();
    Manager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    Manager::ok(m.post("add_nodes", json!({"count": 1, "cloud": "edge"})));
    assert_eq!(m.settle(), "RUNNING");
    Manager::ok(m.post("add_nodes", json!({"count": 1, "cloud": "default"})));
    assert_eq!(m.settle(), "RUNNING");
    assert_eq!(
        node_ids(&Manager::ok(m.get("list_nodes", None))),
        ["edge1", "iaas1"]
    );
    let info = Manager::ok(m.get("get_node_info", Some(&json!({"serviceNodeId": "edge1"}))));
    assert_eq!(info["serviceNode"]["ip"], "127.0.7.2");
    assert_eq!(info["serviceNode"]["cloud"], "edge");
    assert_eq!(
        Manager::ok(m.get("get_helloworld", None)),
        json!({"helloworld": ["edge1", "iaas1"]})
    );
    Manager::ok(m.post("shutdown", json!({})));
    assert_eq!(m.settle(), "STOPPED");
    assert_eq!(
        processes_mentioning(&m.setup.clouds_dir()),
        Vec::<String>::new()
    );
}

#[test]
fn bad_manager_configurations_get_the_seeds_messages() {
    let dir = tempfile::tempdir().unwrap();
    let run = |text: Option<&str>| {
        let path = dir.path().join("manager.cfg");
        match text {
            Some(text) => std::fs::write(&path, text).unwrap(),
            None => {
                let _ = std::fs::remove_file(&path);
            }
        }
        let output = Command::new(paasm_bin())
            .arg("manager")
            .arg("--config")
            .arg(&path)
            .args(["--listen", "127.0.0.1:0"])
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        String::from_utf8_lossy(&output.stderr).into_owned()
    };
    let err = run(None);
    assert!(err.contains("Failed to find configuration file"), "{err}");
    let err = run(Some("[manager]\nTYPE = helloworld\nBOOTSTRAP =\n"));
    assert!(
        err.contains("Missing configuration variable \"BOOTSTRAP\" in section \"manager\""),
        "{err}"
    );
    assert!(
        err.contains("Missing configuration variable \"FE_SERVICE_ID\" in section \"manager\""),
        "{err}"
    );
    assert!(
        err.contains("Missing configuration section \"iaas\""),
        "{err}"
    );
    let err = run(Some(
        "[iaas]\nDRIVER = openstack\nOTHER_CLOUDS = a, b\n[a]\nDRIVER = local\n[manager]\nTYPE = helloworld\nBOOTSTRAP = http://x\nLOG_FILE = /tmp/x.log\nFE_CREDIT_URL = x\nFE_TERMINATE_URL = x\nFE_SERVICE_ID = 1\nNODE_BOOT_TIMEOUT = soon\n",
    ));
    assert!(
        err.contains(
            "invalid value for \"DRIVER\" in section \"iaas\": unknown cloud driver \"openstack\""
        ),
        "{err}"
    );
    assert!(err.contains("Missing configuration section \"b\""), "{err}");
    assert!(err.contains("\"NODE_BOOT_TIMEOUT\""), "{err}");
}

/// Checks one call's reply envelope against the step's `result`, `contains`, `error` or
/// `error_prefix`.
fn check_reply(at: &str, reply: &Value, step: &toml::Table, service: &str) {
    let expected = |key: &str| {
        step.get(key)
            .map(|v| case_json(v, &[("${SERVICE}", service)]))
    };
    if let Some(error) = expected("error") {
        assert_eq!(reply.get("error"), Some(&error), "{at}: {reply}");
        assert!(reply.get("result").is_none(), "{at}: {reply}");
    } else if let Some(prefix) = expected("error_prefix") {
        let message = reply["error"]
            .as_str()
            .unwrap_or_else(|| panic!("{at}: {reply}"));
        assert!(
            message.starts_with(prefix.as_str().unwrap()),
            "{at}: {message:?} does not start with {prefix}"
        );
    } else {
        assert!(reply["error"].is_null(), "{at}: {reply}");
        if let Some(result) = expected("result") {
            assert_eq!(reply["result"], result, "{at}");
        }
        if let Some(part) = expected("contains") {
            assert!(
                contains(&reply["result"], &part),
                "{at}: {} does not contain {part}",
                reply["result"]
            );
        }
    }
}

/// Runs one step of a manager conformance case.
fn run_manager_step(m: &Manager, at: &str, step: &toml::Table) {
    let service = m.setup.service.as_str();
    let text = |key: &str| step.get(key).and_then(|v| v.as_str());
    let strings = |key: &str| -> Option<Vec<String>> {
        step.get(key).map(|v| {
            case_json(v, &[("${SERVICE}", service)])
                .as_array()
                .unwrap_or_else(|| panic!("{at}: {key} must be an array"))
                .iter()
                .map(|s| s.as_str().unwrap().to_string())
                .collect()
        })
    };
    let params = step
        .get("params")
        .map(|p| case_json(p, &[("${SERVICE}", service)]));
    if let Some(method) = text("get") {
        check_reply(at, &m.get(method, params.as_ref()), step, service);
    } else if let Some(method) = text("post") {
        let reply = m.post(method, params.unwrap_or_else(|| json!({})));
        check_reply(at, &reply, step, service);
    } else if let Some(method) = text("upload") {
        let files = step["files"].as_table().unwrap();
        let fields: Vec<(&str, Option<&str>, &[u8])> = files
            .iter()
            .map(|(name, content)| {
                let content = content.as_str().unwrap().as_bytes();
                (name.as_str(), Some("upload.txt"), content)
            })
            .collect();
        let reply = support::upload(m.addr, method, &fields);
        assert_eq!(reply.status, 200, "{at}: {}", reply.text());
        check_reply(at, &reply.json(), step, service);
    } else if let Some(state) = text("settle") {
        assert_eq!(m.settle(), state, "{at}: {:?}", m.history());
    } else if let Some(states) = strings("state_in") {
        let state = m.state();
        assert!(
            states.contains(&state),
            "{at}: {state} is none of {states:?}"
        );
    } else if let Some(texts) = strings("log_contains") {
        let log = m.log();
        for text in texts {
            assert!(log.contains(&text), "{at}: {text:?} not in the log:\n{log}");
        }
    } else if let Some(states) = strings("history") {
        let history: Vec<String> = m.history().into_iter().map(|(s, _)| s).collect();
        assert_eq!(history, states, "{at}");
    } else if let Some(len) = step.get("history_len") {
        assert_eq!(
            m.history().len() as i64,
            len.as_integer().unwrap(),
            "{at}: {:?}",
            m.history()
        );
    } else if let Some(check) = step.get("node_processes").and_then(|c| c.as_table()) {
        let node = check["node"].as_str().unwrap();
        let dir = if node.is_empty() {
            m.setup.nodes_dir()
        } else {
            m.setup.node_dir(node)
        };
        let running = !processes_mentioning(&dir).is_empty();
        assert_eq!(
            running,
            check["running"].as_bool().unwrap(),
            "{at}: processes of {}: {:?}",
            dir.display(),
            processes_mentioning(&dir)
        );
    } else if let Some(vmid) = text("agent_code") {
        let package = services_dir().join(service);
        let manifest: toml::Table =
            toml::from_str(&std::fs::read_to_string(package.join("service.toml")).unwrap())
                .unwrap();
        let component = manifest["agent"]["component"].as_str().unwrap();
        let fetched = std::fs::read(m.setup.node_dir(vmid).join("paasm/agent.wasm")).unwrap();
        assert!(
            fetched == std::fs::read(package.join(component)).unwrap(),
            "{at}: node {vmid} does not run {component}"
        );
    } else {
        panic!(
            "{at}: a step needs one of get, post, upload, settle, state_in, log_contains, \
             history, history_len, node_processes, agent_code"
        );
    }
}

/// Runs every manager conformance case, each on a fresh manager of `service`.
pub fn run_manager_conformance(service: &str) {
    for (file, case) in case_files("manager") {
        let name = case["name"].as_str().unwrap_or(&file).to_string();
        let m = ManagerSetup::for_service(service, "").start();
        let steps = case["step"].as_array().unwrap();
        for (i, step) in steps.iter().enumerate() {
            let at = format!("{service}: {file} ({name}), step {}", i + 1);
            run_manager_step(&m, &at, step.as_table().unwrap());
        }
    }
}

#[test]
fn the_rust_manager_passes_the_manager_conformance_suite() {
    run_manager_conformance("helloworld");
}

#[test]
fn the_python_manager_passes_the_manager_conformance_suite() {
    run_manager_conformance("helloworld-py");
}

#[test]
fn the_javascript_manager_passes_the_manager_conformance_suite() {
    run_manager_conformance("helloworld-js");
}

#[test]
fn the_go_manager_passes_the_manager_conformance_suite() {
    run_manager_conformance("helloworld-go");
}

#[test]
fn the_c_manager_passes_the_manager_conformance_suite() {
    run_manager_conformance("helloworld-c");
}

/// What a client sees of a helloworld manager that the conformance data does not spell out:
/// its OpenRPC document and the note upload with bytes that are not UTF-8.
fn manager_transcript(service: &str) -> Vec<Value> {
    let m = ManagerSetup::for_service(service, "").start();
    let discover = Manager::ok(m.get("rpc.discover", None));
    let mut transcript = vec![discover["methods"].clone()];
    let upload = |bytes: &[u8]| {
        let reply = support::upload(m.addr, "upload_note", &[("note", Some("n.bin"), bytes)]);
        assert_eq!(reply.status, 200, "{}", reply.text());
        reply.json()
    };
    transcript.push(upload(b"\xff\xfeabc\r\nnext"));
    transcript.push(upload(b""));
    // A NUL byte is part of the first line like any other.
    transcript.push(upload(b"a\0b\r\nc"));
    transcript
}

#[test]
fn the_managers_in_every_language_offer_exactly_what_the_rust_one_does() {
    let rust = manager_transcript("helloworld");
    let python = manager_transcript("helloworld-py");
    let javascript = manager_transcript("helloworld-js");
    let go = manager_transcript("helloworld-go");
    let c = manager_transcript("helloworld-c");
    let names: Vec<&str> = rust[0]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|m| m["name"].as_str())
        .collect();
    assert!(
        names.contains(&"get_helloworld") && names.contains(&"upload_note"),
        "{names:?}"
    );
    assert_eq!(
        rust[1]["result"],
        json!({"bytes": 11, "first_line": "\u{fffd}\u{fffd}abc"})
    );
    assert_eq!(
        rust[3]["result"],
        json!({"bytes": 6, "first_line": "a\u{0}b"})
    );
    assert_eq!(python, rust);
    assert_eq!(javascript, rust);
    assert_eq!(go, rust);
    assert_eq!(c, rust);
}

/// A services directory under `dir` holding one package, `controlled`: the test manager
/// (whose methods call the controller and agents imports) with the helloworld agent.
fn controlled_package(dir: &Path) -> PathBuf {
    let services = dir.join("services");
    let package = services.join("controlled");
    std::fs::create_dir_all(&package).unwrap();
    for name in ["test-manager", "helloworld-agent"] {
        std::fs::copy(
            support::component(name),
            package.join(format!("{name}.wasm")),
        )
        .unwrap();
    }
    std::fs::write(
        package.join("service.toml"),
        "name = \"controlled\"\nversion = \"0.1.0\"\n\
         [manager]\ncomponent = \"test-manager.wasm\"\n\
         [agent]\ncomponent = \"helloworld-agent.wasm\"\nconfig = \"agent.cfg\"\n\
         roles = [\"helloworld\"]\n",
    )
    .unwrap();
    std::fs::write(package.join("agent.cfg"), "STRING_TO_GENERATE = $STRING\n").unwrap();
    services
}

#[test]
fn a_manager_component_creates_calls_and_deletes_nodes_itself() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = ManagerSetup::for_service("controlled", "");
    setup.services = controlled_package(dir.path());
    let m = setup.start();
    Manager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    assert_eq!(Manager::ok(m.get("clouds", None)), json!(["iaas"]));

    // Nodes the component creates itself, with its own context for their configuration.
    let grown = Manager::ok(m.post("grow", json!({"count": 2, "greeting": "bonjour"})));
    let ids: Vec<String> = grown
        .as_array()
        .unwrap_or_else(|| panic!("{grown}"))
        .iter()
        .map(|id| id.as_str().unwrap().to_string())
        .collect();
    assert_eq!(ids, ["iaas1", "iaas2"]);
    assert_eq!(node_ids(&Manager::ok(m.get("list_nodes", None))), ids);
    assert_eq!(Manager::ok(m.get("nodes", None)), json!(ids));
    for id in &ids {
        let started = Manager::ok(m.post(
            "tell",
            json!({"node": id, "method": "startup", "params": "{}"}),
        ));
        assert_eq!(started, "{}", "{id}");
        let greeting = Manager::ok(m.get(
            "ask",
            Some(&json!({"node": id, "method": "get_helloworld"})),
        ));
        assert_eq!(greeting, r#"{"result":"bonjour"}"#, "{id}");
    }
    // An agent's own error, and a node that is not the service's, come back as errors.
    let unknown = m.get(
        "ask",
        Some(&json!({"node": "iaas1", "method": "get_nothing"})),
    );
    assert!(
        unknown["error"].as_str().unwrap().contains("get_nothing"),
        "{unknown}"
    );
    let stranger = m.get(
        "ask",
        Some(&json!({"node": "iaas9", "method": "get_helloworld"})),
    );
    assert!(
        stranger["error"].as_str().unwrap().contains("iaas9"),
        "{stranger}"
    );

    // Deleting through the component: the node's processes go, the other stays.
    Manager::ok(m.post("shrink", json!({"ids": ["iaas1"]})));
    assert_eq!(Manager::ok(m.get("nodes", None)), json!(["iaas2"]));
    assert!(
        processes_mentioning(&m.setup.node_dir("1")).is_empty(),
        "the deleted node's processes are gone"
    );
    assert!(!processes_mentioning(&m.setup.node_dir("2")).is_empty());
    let refused = m.post("shrink", json!({"ids": ["iaas7"]}));
    assert!(
        refused["error"].as_str().unwrap().contains("iaas7"),
        "{refused}"
    );
    let nowhere = m.post(
        "grow",
        json!({"count": 1, "cloud": "mars", "greeting": "x"}),
    );
    assert!(
        nowhere["error"].as_str().unwrap().contains("mars"),
        "{nowhere}"
    );
    assert_eq!(Manager::ok(m.get("nodes", None)), json!(["iaas2"]));

    Manager::ok(m.post("shutdown", json!({})));
    assert_eq!(m.settle(), "STOPPED");
    assert!(
        processes_mentioning(&m.setup.nodes_dir()).is_empty(),
        "no agent left behind"
    );
}

/// Kills (SIGKILL) every process whose command line mentions `needle`; how many it killed.
fn kill_processes_mentioning(needle: &Path) -> usize {
    let needle = needle.display().to_string();
    let mut killed = 0;
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<i32>() else {
            continue;
        };
        let Ok(cmdline) = std::fs::read(entry.path().join("cmdline")) else {
            continue;
        };
        if String::from_utf8_lossy(&cmdline)
            .replace('\0', " ")
            .contains(&needle)
            && Command::new("kill")
                .args(["-9", &pid.to_string()])
                .status()
                .is_ok_and(|s| s.success())
        {
            killed += 1;
        }
    }
    killed
}

#[test]
fn a_manager_exporting_health_has_its_dead_nodes_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let mut setup = ManagerSetup::for_service("controlled", "NODE_HEALTH_INTERVAL_MS = 200");
    setup.services = controlled_package(dir.path());
    let m = setup.start();
    Manager::ok(m.post("startup", json!({})));
    assert_eq!(m.settle(), "RUNNING");
    Manager::ok(m.post("grow", json!({"count": 2, "greeting": "hello"})));
    assert_eq!(Manager::ok(m.get("nodes", None)), json!(["iaas1", "iaas2"]));

    // The first node's agent dies: after two failed probes the component asks for a new one.
    assert!(kill_processes_mentioning(&m.setup.node_dir("1")) > 0);
    let deadline = Instant::now() + Duration::from_secs(60);
    while Manager::ok(m.get("nodes", None)) != json!(["iaas2", "iaas3"]) {
        assert!(
            Instant::now() < deadline,
            "never replaced: {:?}\n{}",
            m.history(),
            m.log()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(m.settle(), "RUNNING", "{:?}", m.history());
    let history = m.history();
    assert!(
        history.iter().any(|(state, reason)| state == "ADAPTING"
            && reason.contains("unreachable nodes iaas1 to be replaced")
            && reason.contains("replace_nodes started")),
        "{history:?}"
    );
    let log = m.log();
    assert!(
        log.contains("replacing iaas1 after 2 failed probes"),
        "{log}"
    );
    assert!(log.contains("node replaced"), "{log}");
    // The replacement answers its probes, and the dead node left nothing behind.
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let info = Manager::ok(m.get("get_node_info", Some(&json!({"serviceNodeId": "iaas3"}))));
        if info["serviceNode"]["state"] == "running" {
            break;
        }
        assert!(Instant::now() < deadline, "{info}");
        std::thread::sleep(Duration::from_millis(100));
    }
    let info = Manager::ok(m.get("get_node_info", Some(&json!({"serviceNodeId": "iaas2"}))));
    assert_eq!(info["serviceNode"]["failed_probes"], 0, "{info}");
    assert!(processes_mentioning(&m.setup.node_dir("1")).is_empty());

    Manager::ok(m.post("shutdown", json!({})));
    assert_eq!(m.settle(), "STOPPED");
    assert!(processes_mentioning(&m.setup.nodes_dir()).is_empty());
}
