//! `paasm resources` for real: the binary loading provider components from a resources
//! configuration and serving the engine over JSON-RPC 2.0 and the ConPaaS dialect.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{self, Connection, paasm_bin};

/// The directory holding the built components.
fn components() -> PathBuf {
    support::component("test-provider")
        .parent()
        .unwrap()
        .to_path_buf()
}

/// A running `paasm resources`; killed when dropped.
pub struct Resources {
    child: Child,
    pub addr: SocketAddr,
    pub data: PathBuf,
    config: Option<PathBuf>,
}

impl Resources {
    /// Starts `paasm resources` with the configuration `toml` and its data under `data`.
    pub fn start(toml: &str, data: &Path) -> Self {
        std::fs::create_dir_all(data).unwrap();
        let config = data.join("resources.toml");
        std::fs::write(&config, toml).unwrap();
        let (child, addr) = Self::spawn(Some(&config), data)
            .unwrap_or_else(|stderr| panic!("paasm resources did not start:\n{stderr}"));
        Self {
            child,
            addr,
            data: data.to_path_buf(),
            config: Some(config),
        }
    }

    /// Starts `paasm resources` with no `--config`: the example configuration of the
    /// configuration tree, its data under `data`.
    pub fn start_shipped(data: &Path) -> Self {
        let (child, addr) = Self::spawn(None, data)
            .unwrap_or_else(|stderr| panic!("paasm resources did not start:\n{stderr}"));
        Self {
            child,
            addr,
            data: data.to_path_buf(),
            config: None,
        }
    }

    /// Spawns the server (with the configuration tree's example configuration when `config`
    /// is none); its stderr when it exits instead of announcing its address.
    pub fn spawn(config: Option<&Path>, data: &Path) -> Result<(Child, SocketAddr), String> {
        let mut command = Command::new(paasm_bin());
        command.arg("resources");
        match config {
            Some(config) => command.arg("--config").arg(config),
            None => command.arg("--config-dir").arg(support::config_tree()),
        };
        let mut child = command
            .arg("--data")
            .arg(data)
            .arg("--components")
            .arg(components())
            .args(["--listen", "127.0.0.1:0", "--cache-dir"])
            .arg(support::cache_dir())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let line = support::first_line(&mut child, Duration::from_secs(120));
        match line
            .as_deref()
            .and_then(|l| l.strip_prefix("paasm resources listening on http://"))
            .and_then(|a| a.parse().ok())
        {
            Some(addr) => Ok((child, addr)),
            None => {
                let _ = child.kill();
                let output = child.wait_with_output().unwrap();
                Err(String::from_utf8_lossy(&output.stderr).into_owned())
            }
        }
    }

    /// Kills the server (SIGKILL) and starts it again on the same files.
    pub fn kill_and_restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, addr) = Self::spawn(self.config.as_deref(), &self.data).unwrap();
        self.child = child;
        self.addr = addr;
    }

    /// A JSON-RPC 2.0 call; the whole reply.
    pub async fn call(&self, method: &str, params: Value) -> Value {
        Connection::open(self.addr).await.call(method, params).await
    }
}

impl Drop for Resources {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

const MEMO: &str = r#"
[implementations]
test_memo = "test-provider.wasm"

[resources.memo]
implementation = "test_memo"
config = { prefix = "note-" }
"#;

#[tokio::test(flavor = "multi_thread")]
async fn the_engine_over_json_rpc_with_distinct_errors() {
    let dir = tempfile::tempdir().unwrap();
    let r = Resources::start(MEMO, &dir.path().join("data"));
    let created = r
        .call(
            "create",
            json!({"resource": "memo", "key": "alpha", "params": {"size": 4, "secret": "hunter2"}}),
        )
        .await;
    let result = &created["result"];
    assert_eq!(result["params"]["size"], "4", "{created}");
    assert_eq!(result["params"]["secret"], "***");
    assert_eq!(result["params"]["status"], "created");
    assert_eq!(result["pkey"], json!({"num": 5}));

    let again = r
        .call("create", json!({"resource": "memo", "key": "ALPHA"}))
        .await;
    assert_eq!(again["error"]["code"], -32010, "{again}");
    let missing = r
        .call("get", json!({"resource": "memo", "key": "nobody"}))
        .await;
    assert_eq!(missing["error"]["code"], -32011, "{missing}");
    let invalid = r
        .call(
            "create",
            json!({"resource": "memo", "key": "beta", "params": {"size": "-3", "status": "x"}}),
        )
        .await;
    assert_eq!(invalid["error"]["code"], -32012, "{invalid}");
    let names: Vec<&str> = invalid["error"]["data"]["parameters"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["size", "status"]);
    // The provider's own invalid-parameter error comes through the same way.
    let bad = r
        .call("create", json!({"resource": "memo", "key": "bad"}))
        .await;
    assert_eq!(bad["error"]["code"], -32012, "{bad}");
    assert_eq!(bad["error"]["data"]["parameters"][0]["name"], "name");
    let unknown = r
        .call("get", json!({"resource": "mailbox", "key": "x"}))
        .await;
    assert_eq!(unknown["error"]["code"], -32013, "{unknown}");
    let malformed = r
        .call(
            "get",
            json!({"resource": "memo", "key": "alpha", "parent": "x"}),
        )
        .await;
    assert_eq!(malformed["error"]["code"], -32602, "{malformed}");
    assert!(
        malformed["error"]["message"]
            .as_str()
            .unwrap()
            .contains("\"parent\"")
    );
    // A guest panic is a failure of that call only.
    let panicked = r
        .call("create", json!({"resource": "memo", "key": "panic"}))
        .await;
    assert_eq!(panicked["error"]["code"], -32000, "{panicked}");
    assert!(
        panicked["error"]["message"]
            .as_str()
            .unwrap()
            .contains("panicked on purpose")
    );

    let dry = r
        .call(
            "create",
            json!({"resource": "memo", "key": "gamma", "dry_run": true}),
        )
        .await;
    assert_eq!(dry["result"]["would"], "create", "{dry}");
    let listed = r.call("list", json!({"resource": "memo"})).await;
    assert_eq!(
        listed["result"]["keys"],
        json!(["alpha", "note-a", "note-b"]),
        "the engine's instances and what the provider enumerates: {listed}"
    );
    let described = r.call("describe", json!({"resource": "memo"})).await;
    assert_eq!(described["result"]["physical"], "test_memo", "{described}");
    assert_eq!(described["result"]["lkey"]["name"], "name");

    let got = r
        .call("get", json!({"resource": "memo", "key": "alpha"}))
        .await;
    assert_eq!(got["result"]["params"]["size"], "4", "{got}");
    let suspended = r
        .call("suspend", json!({"resource": "memo", "key": "alpha"}))
        .await;
    assert_eq!(suspended["result"]["suspended"], true, "{suspended}");
    let deleted = r
        .call("delete", json!({"resource": "memo", "key": "alpha"}))
        .await;
    assert_eq!(deleted["result"]["deleted"], true, "{deleted}");

    // The ConPaaS dialect reaches the same methods (POST), the error as a string.
    let reply = support::post(
        r.addr,
        &json!({"method": "get", "params": {"resource": "memo", "key": "alpha"}, "id": 1}),
    );
    let error = reply.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains("memo alpha does not exist"), "{error}");
    // A provider that quotes its password in its log, its output and its error: the caller
    // and the log see it masked.
    let leaky = r
        .call(
            "create",
            json!({"resource": "memo", "key": "leaky", "params": {"secret": "swordfish"}}),
        )
        .await;
    let message = leaky["error"]["message"].as_str().unwrap();
    assert_eq!(leaky["error"]["code"], -32000, "{leaky}");
    assert!(message.contains("refused secret ***"), "{leaky}");
    assert!(!leaky.to_string().contains("swordfish"), "{leaky}");

    // Nothing sensitive reached the log.
    let log = std::fs::read_to_string(r.data.join("resource.log")).unwrap();
    assert!(!log.contains("hunter2"), "{log}");
    assert!(!log.contains("swordfish"), "{log}");
    assert!(log.contains("the secret is ***"), "{log}");
    // The provider's own lines carry the resource, its physical name and the key.
    let line = log
        .lines()
        .find(|l| l.contains("created memo alpha"))
        .unwrap_or_else(|| panic!("the provider's own log line: {log}"));
    for field in ["resource=memo", "physical=test_memo", "key=alpha"] {
        assert!(line.contains(field), "{field} in {line:?}");
    }
}

#[test]
fn a_configuration_that_activates_two_or_unknown_implementations_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir_all(&data).unwrap();
    let refuse = |toml: &str| -> String {
        let config = data.join("bad.toml");
        std::fs::write(&config, toml).unwrap();
        match Resources::spawn(Some(&config), &data) {
            Ok((mut child, _)) => {
                let _ = child.kill();
                panic!("a bad configuration was accepted:\n{toml}");
            }
            Err(stderr) => stderr,
        }
    };
    let err = refuse(
        "[implementations]\ntest_memo = \"test-provider.wasm\"\n[resources.memo]\nimplementation = \"iis\"\n",
    );
    assert!(err.contains("unknown implementation \"iis\""), "{err}");
    let err = refuse(
        "[implementations]\ntest_memo = \"test-provider.wasm\"\nother = \"test-provider.wasm\"\n[resources.memo]\nimplementation = \"test_memo\"\n",
    );
    assert!(err.contains("describes itself as \"test_memo\""), "{err}");
    let err = refuse(
        "[implementations]\ntest_memo = \"test-provider.wasm\"\n[resources.memo]\nimplementation = \"test_memo\"\n[resources.note]\nimplementation = \"test_memo\"\n",
    );
    assert!(err.contains("implements \"memo\", not \"note\""), "{err}");
    let err = refuse(
        "[implementations]\ntest_memo = \"test-provider.wasm\"\n[resources.memo]\nimplementation = \"test_memo\"\nconfig = { prefix = \"\", colour = \"red\" }\n",
    );
    assert!(err.contains("colour"), "{err}");
    // Activating a second implementation of one resource means naming it twice.
    let err = refuse(
        "[implementations]\ntest_memo = \"test-provider.wasm\"\n[resources.memo]\nimplementation = \"test_memo\"\n[resources.memo]\nimplementation = \"test_memo\"\n",
    );
    assert!(err.contains("duplicate"), "{err}");
}

#[tokio::test(flavor = "multi_thread")]
async fn offline_jobs_survive_a_killed_server() {
    let dir = tempfile::tempdir().unwrap();
    let config = format!("{MEMO}offline = true\n");
    let mut r = Resources::start(&config, &dir.path().join("data"));
    // A bad request fails at once, not in the queue.
    let bad = r
        .call(
            "create",
            json!({"resource": "memo", "key": "x", "params": {"size": "no"}}),
        )
        .await;
    assert_eq!(bad["error"]["code"], -32012, "{bad}");
    let slow = r
        .call("create", json!({"resource": "memo", "key": "slow"}))
        .await;
    let slow_id = slow["result"]["job"]
        .as_i64()
        .unwrap_or_else(|| panic!("{slow}"));
    let next = r
        .call("create", json!({"resource": "memo", "key": "later"}))
        .await;
    let next_id = next["result"]["job"].as_i64().unwrap();
    // Killed while the first job runs and before the second one starts.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let state = r.call("job", json!({"id": next_id})).await;
    assert_eq!(state["result"]["state"], "queued", "{state}");
    r.kill_and_restart();
    let mut done = Value::Null;
    for _ in 0..300 {
        done = r.call("job", json!({"id": next_id})).await;
        if done["result"]["state"] == "done" {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(done["result"]["state"], "done", "{done}");
    let first = r.call("job", json!({"id": slow_id})).await;
    assert_eq!(
        first["result"]["state"], "done",
        "the interrupted job ran again: {first}"
    );
    let got = r
        .call("get", json!({"resource": "memo", "key": "later"}))
        .await;
    assert_eq!(got["result"]["params"]["status"], "created", "{got}");
    let missing = r.call("job", json!({"id": 999})).await;
    assert_eq!(missing["error"]["code"], -32011, "{missing}");
}

#[tokio::test(flavor = "multi_thread")]
async fn of_two_concurrent_creates_of_one_key_exactly_one_succeeds() {
    let dir = tempfile::tempdir().unwrap();
    let r = Resources::start(MEMO, &dir.path().join("data"));
    let create = || r.call("create", json!({"resource": "memo", "key": "race"}));
    let (a, b) = tokio::join!(create(), create());
    let ok = [&a, &b]
        .iter()
        .filter(|reply| reply["error"].is_null())
        .count();
    assert_eq!(ok, 1, "{a} {b}");
    let failed = if a["error"].is_null() { &b } else { &a };
    assert_eq!(failed["error"]["code"], -32010, "{failed}");
}

#[test]
fn inspect_prints_a_providers_description() {
    let output = Command::new(paasm_bin())
        .arg("inspect")
        .arg(support::component("test-provider"))
        .env("PAASM_CACHE_DIR", support::cache_dir())
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let d: Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(d["resource"], "memo");
    assert_eq!(d["physical"], "test_memo");
    assert_eq!(d["lkey"], json!({"name": "name", "kind": "str"}));
    assert_eq!(d["instance_schema"]["props"][0]["key"], true);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_shipped_configuration_keeps_accounts_and_their_sites() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let r = Resources::start_shipped(&data);
    let homes = data.join("homes");

    // Accounts get the physical keys the engine allocates, 1 then 2, and a home each.
    for (name, pkey) in [("alice", 1), ("bob", 2)] {
        let created = r
            .call("create", json!({"resource": "account", "key": name}))
            .await;
        assert_eq!(created["result"]["pkey"], json!({"num": pkey}), "{created}");
        let marker = std::fs::read_to_string(homes.join(name).join(".paasm-account")).unwrap();
        assert_eq!(marker, format!("{pkey}\n"));
    }
    let again = r
        .call("create", json!({"resource": "account", "key": "alice"}))
        .await;
    assert_eq!(again["error"]["code"], -32010, "{again}");

    // A site in alice's account, by the active hosting implementation (nginx_vhost).
    let alice = json!([["account", "alice"]]);
    let site = r
        .call(
            "create",
            json!({"resource": "hosting", "key": "shop.example", "parent": alice,
                   "params": {"ip": "127.0.0.1", "port": 8089}}),
        )
        .await;
    assert_eq!(
        site["result"]["params"]["docrootpath"],
        homes.join("alice/shop.example").display().to_string(),
        "{site}"
    );
    let vhosts: Vec<String> = std::fs::read_dir(data.join("web/sites"))
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    assert!(
        vhosts
            .iter()
            .any(|v| v.contains("server_name shop.example")),
        "an nginx server block for the site: {vhosts:?}"
    );

    // Suspend and resume the account itself.
    let suspended = r
        .call("suspend", json!({"resource": "account", "key": "alice"}))
        .await;
    assert_eq!(suspended["result"]["suspended"], true, "{suspended}");
    assert!(homes.join("alice/.paasm-suspended").exists());
    let got = r
        .call("get", json!({"resource": "account", "key": "alice"}))
        .await;
    assert_eq!(got["result"]["params"]["status"], "suspended", "{got}");
    r.call("resume", json!({"resource": "account", "key": "alice"}))
        .await;
    assert!(!homes.join("alice/.paasm-suspended").exists());
    let got = r
        .call("get", json!({"resource": "account", "key": "alice"}))
        .await;
    assert_eq!(got["result"]["params"]["status"], "active", "{got}");

    // An account with a site is not deleted; without it, its home goes.
    let refused = r
        .call("delete", json!({"resource": "account", "key": "alice"}))
        .await;
    assert!(
        refused["error"]["message"]
            .as_str()
            .unwrap()
            .contains("still has child resources"),
        "{refused}"
    );
    assert!(homes.join("alice").is_dir(), "nothing was removed");
    r.call(
        "delete",
        json!({"resource": "hosting", "key": "shop.example", "parent": alice}),
    )
    .await;
    let deleted = r
        .call("delete", json!({"resource": "account", "key": "alice"}))
        .await;
    assert_eq!(deleted["result"]["deleted"], true, "{deleted}");
    assert!(!homes.join("alice").exists(), "the home is removed");
    assert!(homes.join("bob").is_dir(), "other accounts stay");

    // The next account gets a key no other account has.
    let carol = r
        .call("create", json!({"resource": "account", "key": "carol"}))
        .await;
    assert_ne!(carol["result"]["pkey"], json!({"num": 2}), "{carol}");
}
