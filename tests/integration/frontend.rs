//! Running `paasm frontend` for real and driving it as users do: through the `paasm` CLI
//! (login, services, calls) and the JSON-RPC API, with managers started on the local cloud
//! and their agents answering; billing through the managers' real callbacks; restarts on the
//! same database; bad input everywhere.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::managers::{ManagerSetup, free_port, processes_mentioning, services_dir};
use crate::support::{self, KillOnDrop, paasm_bin};

/// How long a test waits for a service to settle.
const SETTLE: Duration = Duration::from_secs(120);

/// A frontend's files: a configuration tree (agents on a port of their own), its VAR
/// directory, and the CLI's credentials file.
pub struct FrontendSetup {
    manager: ManagerSetup,
    pub manager_port: u16,
    pub credentials: PathBuf,
    /// More arguments for `paasm frontend`.
    pub extra_args: Vec<String>,
    /// The services directory it serves.
    pub services: PathBuf,
}

impl FrontendSetup {
    pub fn new() -> Self {
        let manager = ManagerSetup::new("");
        let credentials = manager.var.with_file_name("home").join("credentials.toml");
        Self {
            manager,
            manager_port: free_port(),
            credentials,
            extra_args: Vec::new(),
            services: services_dir(),
        }
    }

    pub fn var(&self) -> &Path {
        &self.manager.var
    }

    pub fn tree(&self) -> &Path {
        &self.manager.tree
    }

    /// Starts the frontend on a free port.
    pub fn start(self) -> Frontend {
        let (child, addr) = self.spawn();
        Frontend {
            child: Some(child),
            addr,
            setup: self,
        }
    }

    fn spawn(&self) -> (Child, SocketAddr) {
        let mut child = Command::new(paasm_bin())
            .args(["frontend", "--listen", "127.0.0.1:0"])
            .arg("--var")
            .arg(self.var())
            .arg("--config-dir")
            .arg(self.tree())
            .arg("--services-dir")
            .arg(&self.services)
            .arg("--cache-dir")
            .arg(support::cache_dir())
            .args(["--manager-port", &self.manager_port.to_string()])
            .args(&self.extra_args)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn paasm frontend");
        let line = support::first_line(&mut child, Duration::from_secs(60));
        let addr = line
            .as_deref()
            .and_then(|l| l.strip_prefix("paasm frontend listening on http://"))
            .and_then(|a| a.parse().ok());
        match addr {
            Some(addr) => (child, addr),
            None => {
                let _ = child.kill();
                let output = child.wait_with_output().unwrap();
                panic!(
                    "paasm frontend did not start ({line:?}); stderr:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        }
    }
}

/// A running frontend. Dropping it stops it and kills every node it (or its managers) left.
pub struct Frontend {
    child: Option<Child>,
    pub addr: SocketAddr,
    pub setup: FrontendSetup,
}

impl Frontend {
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Runs the `paasm` CLI against this frontend with the test's credentials file.
    pub fn cli(&self, args: &[&str], stdin: &str) -> Output {
        use std::io::Write;
        let mut child = Command::new(paasm_bin())
            .args(args)
            .args(["--frontend", &self.url()])
            .env("PAASM_CREDENTIALS", &self.setup.credentials)
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn paasm");
        child
            .stdin
            .take()
            .unwrap()
            .write_all(stdin.as_bytes())
            .unwrap();
        child.wait_with_output().unwrap()
    }

    /// Runs the CLI and expects success; its stdout.
    pub fn cli_ok(&self, args: &[&str], stdin: &str) -> String {
        let out = self.cli(args, stdin);
        assert!(
            out.status.success(),
            "paasm {args:?} failed ({}):\nstdout: {}\nstderr: {}",
            out.status,
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    /// Calls the API; the whole JSON-RPC reply.
    pub fn api(&self, token: Option<&str>, method: &str, params: Value) -> Value {
        let body = json!({"jsonrpc": "2.0", "id": 7, "method": method, "params": params});
        let mut request = format!(
            "POST /api HTTP/1.1\r\nHost: {}\r\nContent-Type: application/json\r\nConnection: close\r\n",
            self.addr
        );
        if let Some(token) = token {
            request.push_str(&format!("Authorization: Bearer {token}\r\n"));
        }
        let body = body.to_string();
        request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
        let reply = support::exchange(self.addr, request.as_bytes());
        assert_eq!(reply.status, 200, "{}", reply.text());
        let value = reply.json();
        assert_eq!(value["id"], 7, "{value}");
        value
    }

    /// The result of an API call that must succeed.
    pub fn api_ok(&self, token: Option<&str>, method: &str, params: Value) -> Value {
        let reply = self.api(token, method, params);
        assert!(reply.get("error").is_none(), "{method}: {reply}");
        reply["result"].clone()
    }

    /// The error of an API call that must fail.
    pub fn api_err(&self, token: Option<&str>, method: &str, params: Value) -> Value {
        let reply = self.api(token, method, params);
        assert!(
            reply.get("result").is_none(),
            "{method} should fail: {reply}"
        );
        reply["error"].clone()
    }

    /// Creates a user through the API and logs in; the token.
    pub fn user(&self, admin_token: Option<&str>, name: &str, credit: Option<i64>) -> String {
        let mut params = json!({"username": name, "password": "s3cret-password"});
        if let Some(credit) = credit {
            params["credit"] = json!(credit);
        }
        self.api_ok(admin_token, "user.create", params);
        let login = self.api_ok(
            None,
            "login",
            json!({"username": name, "password": "s3cret-password"}),
        );
        login["token"].as_str().unwrap().to_string()
    }

    /// Calls a manager method of service `sid` through the frontend; its result.
    pub fn call(&self, token: &str, sid: i64, method: &str, params: Value) -> Value {
        self.api_ok(
            Some(token),
            "service.call",
            json!({"sid": sid, "method": method, "params": params}),
        )
    }

    /// Creates a helloworld service and starts it; its id, once it is RUNNING.
    pub fn running_service(&self, token: &str) -> i64 {
        let sid = self.api_ok(Some(token), "service.create", json!({"type": "helloworld"}))["sid"]
            .as_i64()
            .unwrap();
        assert_eq!(self.settle(token, sid)["state"], "INIT");
        self.call(token, sid, "startup", json!({}));
        assert_eq!(self.settle(token, sid)["state"], "RUNNING");
        sid
    }

    /// Waits until the service is in a stable state; the service.
    pub fn settle(&self, token: &str, sid: i64) -> Value {
        let deadline = Instant::now() + SETTLE;
        loop {
            let service = self.api_ok(Some(token), "service.get", json!({"sid": sid}));
            if service["transient"] == false {
                return service;
            }
            assert!(
                Instant::now() < deadline,
                "service {sid} still transient after {SETTLE:?}: {service}"
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Stops the frontend with SIGTERM (its managers keep running) and waits for it.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = Command::new("kill")
                .args(["-TERM", &child.id().to_string()])
                .status();
            let deadline = Instant::now() + Duration::from_secs(20);
            while child.try_wait().unwrap().is_none() {
                if Instant::now() > deadline {
                    let _ = child.kill();
                }
                std::thread::sleep(Duration::from_millis(20));
            }
            let _ = child.wait();
        }
    }

    /// Starts the frontend again on the same files.
    pub fn restart(&mut self) {
        self.stop();
        let (child, addr) = self.setup.spawn();
        self.child = Some(child);
        self.addr = addr;
    }

    /// Processes still running from this frontend's nodes (managers, their agents).
    pub fn leftovers(&self) -> Vec<String> {
        processes_mentioning(&self.setup.var().join("nodes"))
    }
}

impl Drop for Frontend {
    fn drop(&mut self) {
        self.stop();
        // The safety net: every node recorded anywhere under the VAR directory.
        kill_nodes_under(self.setup.var());
    }
}

fn kill_nodes_under(dir: &Path) {
    paasm::iaas::local::kill_all(dir);
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            kill_nodes_under(&entry.path());
        }
    }
}

fn wait_until(what: &str, timeout: Duration, mut done: impl FnMut() -> bool) {
    let deadline = Instant::now() + timeout;
    while !done() {
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

#[test]
fn the_whole_user_flow_through_the_cli() {
    let fe = FrontendSetup::new().start();
    // The first user of a frontend needs no login and becomes its administrator.
    let created = fe.cli_ok(
        &["user", "create", "alice", "--password-stdin"],
        "wonderland-pw\n",
    );
    assert!(created.contains("created user alice"), "{created}");
    assert!(created.contains("administrator"), "{created}");
    let login = fe.cli_ok(&["login", "alice", "--password-stdin"], "wonderland-pw\n");
    assert!(login.contains("logged in"), "{login}");
    // The credentials file: the token, never the password, readable by the user only.
    let saved = std::fs::read_to_string(&fe.setup.credentials).unwrap();
    assert!(
        saved.contains("token") && !saved.contains("wonderland"),
        "{saved}"
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&fe.setup.credentials)
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o077, 0, "credentials readable by others: {mode:o}");

    let catalogue = fe.cli_ok(&["service", "catalogue"], "");
    assert!(catalogue.contains("helloworld"), "{catalogue}");

    let created: Value =
        serde_json::from_str(&fe.cli_ok(&["service", "create", "helloworld", "--json"], ""))
            .unwrap();
    let sid = created["sid"].as_i64().unwrap();
    assert_eq!(created["state"], "INIT", "{created}");
    assert_eq!(created["reachable"], true, "{created}");
    let sid_text = sid.to_string();
    let credit = fe.cli_ok(&["user", "credit", "--json"], "");
    let credit: Value = serde_json::from_str(&credit).unwrap();
    assert_eq!(credit["user"]["credit"], 49, "creation costs 1: {credit}");

    let started = fe.cli_ok(&["service", "start", &sid_text], "");
    assert!(started.contains("RUNNING"), "{started}");
    let added = fe.cli_ok(&["service", "add-nodes", &sid_text, "2"], "");
    assert!(added.contains("RUNNING"), "{added}");
    let nodes: Value =
        serde_json::from_str(&fe.cli_ok(&["service", "nodes", &sid_text, "--json"], "")).unwrap();
    let count: usize = nodes
        .as_object()
        .unwrap()
        .values()
        .map(|ids| ids.as_array().unwrap().len())
        .sum();
    assert_eq!(count, 2, "{nodes}");

    let hello: Value =
        serde_json::from_str(&fe.cli_ok(&["call", &sid_text, "get_helloworld"], "")).unwrap();
    assert_eq!(
        hello["helloworld"].as_array().map(Vec::len),
        Some(2),
        "{hello}"
    );
    // An UPLOAD method through the API: the file goes to the manager as a multipart field.
    let token = toml::from_str::<toml::Table>(&saved).unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();
    let note = fe.api_ok(
        Some(&token),
        "service.call",
        json!({"sid": sid, "method": "upload_note",
               "files": {"note": {"name": "note.txt", "content_base64": "aGkgdGhlcmUKYnll"}}}),
    );
    assert_eq!(note, json!({"bytes": 12, "first_line": "hi there"}));
    let e = fe.api_err(
        Some(&token),
        "service.call",
        json!({"sid": sid, "method": "get_helloworld", "files": {"x": {"name": "x", "content_base64": ""}}}),
    );
    assert_eq!(e["data"]["field"], "files.x", "{e}");
    let logs = fe.cli_ok(&["service", "logs", &sid_text], "");
    assert!(
        logs.contains("Received"),
        "the manager logs each agent's answer: {logs}"
    );
    let listed = fe.cli_ok(&["service", "list"], "");
    assert!(
        listed.contains("RUNNING") && listed.contains("helloworld"),
        "{listed}"
    );

    let terminated = fe.cli_ok(&["service", "terminate", &sid_text], "");
    assert!(terminated.contains("terminated"), "{terminated}");
    let listed: Value =
        serde_json::from_str(&fe.cli_ok(&["service", "list", "--json"], "")).unwrap();
    assert_eq!(listed, json!([]));
    wait_until(
        "the service's processes to end",
        Duration::from_secs(20),
        || fe.leftovers().is_empty(),
    );
    assert!(fe.leftovers().is_empty(), "{:?}", fe.leftovers());
}

#[test]
fn credit_runs_out_and_forged_callbacks_are_refused() {
    let mut setup = FrontendSetup::new();
    setup.extra_args = vec!["--credit-period".into(), "1".into()];
    let fe = setup.start();
    let admin = fe.user(None, "root", None);
    let bob = fe.user(Some(&admin), "bob", Some(6));
    let service = fe.api_ok(Some(&bob), "service.create", json!({"type": "helloworld"}));
    let sid = service["sid"].as_i64().unwrap();
    assert_eq!(fe.settle(&bob, sid)["state"], "INIT");

    // Forged callbacks: no secret, or a wrong one. Nothing changes.
    for auth in ["", "Authorization: Bearer 00112233\r\n"] {
        for (path, body) in [
            (
                "/callback/decrementUserCredit.php",
                format!("sid={sid}&decrement=5"),
            ),
            ("/callback/terminateService.php", format!("sid={sid}")),
        ] {
            let request = format!(
                "POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/x-www-form-urlencoded\r\n{auth}Content-Length: {}\r\nConnection: close\r\n\r\n{body}",
                body.len()
            );
            let reply = support::exchange(fe.addr, request.as_bytes()).json();
            assert_eq!(
                reply,
                json!({"error": true, "msg": "Not allowed"}),
                "{path}"
            );
        }
    }
    let credit = fe.api_ok(Some(&bob), "whoami", json!({}))["credit"].clone();
    assert_eq!(credit, 5, "only the creation was charged");
    assert_eq!(fe.settle(&bob, sid)["state"], "INIT", "not terminated");

    // Two nodes cost 2 credits a second: bob's credit runs out, the service is shut down.
    let call = |method: &str, params: Value| fe.call(&bob, sid, method, params);
    call("startup", json!({}));
    assert_eq!(fe.settle(&bob, sid)["state"], "RUNNING");
    call("add_nodes", json!({"count": 1}));
    let deadline = Instant::now() + SETTLE;
    let stopped = loop {
        let service = fe.api_ok(Some(&bob), "service.get", json!({"sid": sid}));
        if service["state"] == "STOPPED" {
            break service;
        }
        assert!(Instant::now() < deadline, "never stopped: {service}");
        std::thread::sleep(Duration::from_millis(200));
    };
    assert!(
        stopped["reason"].as_str().unwrap().contains("credit"),
        "{stopped}"
    );
    let account = fe.api_ok(Some(&bob), "user.credit", json!({}));
    let credit = account["user"]["credit"].as_i64().unwrap();
    assert!((0..=5).contains(&credit), "{account}");
    // The ledger adds up: every balance is the previous one plus the amount.
    let ledger = account["ledger"].as_array().unwrap();
    assert!(ledger.len() >= 3, "{account}");
    for pair in ledger.windows(2) {
        let (newer, older) = (&pair[0], &pair[1]);
        assert_eq!(
            newer["balance"].as_i64().unwrap(),
            older["balance"].as_i64().unwrap() + newer["amount"].as_i64().unwrap(),
            "{account}"
        );
    }
    assert!(
        ledger
            .iter()
            .any(|e| e["reason"].as_str().unwrap().contains("node time")),
        "{account}"
    );
    // The stopped service holds no agent any more (only its manager runs).
    let agents = fe
        .setup
        .var()
        .join("nodes/local/1/var/cache/paasm-manager/nodes");
    wait_until("the agents to end", Duration::from_secs(20), || {
        processes_mentioning(&agents).is_empty()
    });
    let history = call("get_service_history", json!({}));
    assert!(
        history.to_string().contains("credit exhausted"),
        "{history}"
    );
    fe.api_ok(Some(&bob), "service.terminate", json!({"sid": sid}));
    wait_until(
        "the service's processes to end",
        Duration::from_secs(20),
        || fe.leftovers().is_empty(),
    );
}

#[test]
fn restarting_the_frontend_keeps_users_services_and_credit() {
    restart_flow(FrontendSetup::new());
}

#[test]
fn a_frontend_on_postgresql_keeps_its_state_across_restarts() {
    let server = crate::pg::Postgres::start();
    let mut setup = FrontendSetup::new();
    setup.extra_args = vec!["--database".into(), server.url.clone()];
    restart_flow(setup);
    // The rows are in PostgreSQL, not in a SQLite file beside the frontend.
    let mut client = ::postgres::Client::connect(&server.url, ::postgres::NoTls).unwrap();
    let users: i64 = client
        .query_one("SELECT COUNT(*) FROM users", &[])
        .unwrap()
        .get(0);
    assert_eq!(users, 1);
}

fn restart_flow(setup: FrontendSetup) {
    let mut fe = setup.start();
    let token = fe.user(None, "carol", None);
    let service = fe.api_ok(
        Some(&token),
        "service.create",
        json!({"type": "helloworld", "name": "carol's greeter"}),
    );
    let sid = service["sid"].as_i64().unwrap();
    assert_eq!(fe.settle(&token, sid)["state"], "INIT");
    fe.restart();
    // The session survives (tokens are in the database) and so do the service and credit.
    let me = fe.api_ok(Some(&token), "whoami", json!({}));
    assert_eq!(me["username"], "carol");
    assert_eq!(me["credit"], 49);
    let services = fe.api_ok(Some(&token), "service.list", json!({}));
    assert_eq!(services[0]["name"], "carol's greeter", "{services}");
    // The manager kept running and is found again.
    let service = fe.api_ok(Some(&token), "service.get", json!({"sid": sid}));
    assert_eq!(service["reachable"], true, "{service}");
    assert_eq!(service["state"], "INIT", "{service}");
    fe.api_ok(Some(&token), "service.terminate", json!({"sid": sid}));
    wait_until("the manager to end", Duration::from_secs(20), || {
        fe.leftovers().is_empty()
    });
}

#[test]
fn bad_input_is_named_and_changes_nothing() {
    let fe = FrontendSetup::new().start();
    let token = fe.user(None, "dave", None);
    let field = |error: &Value| error["data"]["field"].as_str().unwrap_or("").to_string();

    let e = fe.api_err(Some(&token), "service.create", json!({"type": "nosuch"}));
    assert_eq!(
        (e["code"].as_i64(), field(&e)),
        (Some(-32602), "type".into()),
        "{e}"
    );
    let e = fe.api_err(
        Some(&token),
        "service.create",
        json!({"type": "helloworld", "cloud": "mars"}),
    );
    assert_eq!(field(&e), "cloud", "{e}");
    assert!(e["message"].as_str().unwrap().contains("local"), "{e}");
    let e = fe.api_err(Some(&token), "service.get", json!({"sid": "one"}));
    assert_eq!(field(&e), "sid", "{e}");
    let e = fe.api_err(Some(&token), "service.get", json!({"sid": 999}));
    assert_eq!(e["code"], -32004, "{e}");
    let e = fe.api_err(Some(&token), "service.list", json!({"colour": "red"}));
    assert_eq!(field(&e), "colour", "{e}");
    let e = fe.api_err(
        Some(&token),
        "user.create",
        json!({"username": "x y", "password": "long enough"}),
    );
    assert_eq!(field(&e), "username", "{e}");
    let e = fe.api_err(
        Some(&token),
        "user.create",
        json!({"username": "eve", "password": "short"}),
    );
    assert_eq!(field(&e), "password", "{e}");
    let e = fe.api_err(None, "whoami", json!({}));
    assert_eq!(e["code"], -32001, "{e}");
    let e = fe.api_err(Some("forged"), "whoami", json!({}));
    assert_eq!(e["code"], -32001, "{e}");
    let e = fe.api_err(
        None,
        "user.create",
        json!({"username": "mallory", "password": "long enough"}),
    );
    assert_eq!(
        e["code"], -32003,
        "only the first user is created without an admin: {e}"
    );
    let e = fe.api_err(
        None,
        "login",
        json!({"username": "dave", "password": "wrong password"}),
    );
    assert_eq!(e["code"], -32001, "{e}");
    let e = fe.api_err(Some(&token), "no.such", json!({}));
    assert_eq!(e["code"], -32601, "{e}");
    // Not JSON, not JSON-RPC.
    let request = "POST /api HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 9\r\nConnection: close\r\n\r\n{not json";
    let reply = support::exchange(fe.addr, request.as_bytes());
    assert_eq!(reply.json()["error"]["code"], -32700, "{}", reply.text());

    // The CLI names what is wrong and exits 1.
    let out = fe.cli(&["service", "info", "abc"], "");
    assert!(!out.status.success());
    assert!(text(&out).contains("abc"), "{}", text(&out));
    let out = fe.cli(&["service", "list"], "");
    assert!(!out.status.success(), "not logged in");
    assert!(text(&out).contains("paasm login"), "{}", text(&out));
    fe.cli_ok(&["login", "dave", "--password-stdin"], "s3cret-password\n");
    let out = fe.cli(&["service", "create", "nosuch"], "");
    assert!(!out.status.success());
    assert!(text(&out).contains("nosuch"), "{}", text(&out));
    let out = fe.cli(&["login", "dave", "--password-stdin"], "wrong\n");
    assert!(!out.status.success());
    assert!(text(&out).contains("don't match"), "{}", text(&out));

    // Every method names a missing required parameter, and a wrongly typed one.
    let discover = fe.api_ok(None, "rpc.discover", json!({}));
    for method in discover["methods"].as_array().unwrap() {
        let name = method["name"].as_str().unwrap();
        let Some(first) = method["params"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["required"] == true)
        else {
            continue;
        };
        let field = first["name"].as_str().unwrap();
        let e = fe.api_err(Some(&token), name, json!({}));
        assert_eq!(
            (e["code"].as_i64(), e["data"]["field"].as_str()),
            (Some(-32602), Some(field)),
            "{name} without {field}: {e}"
        );
        let e = fe.api_err(Some(&token), name, json!({field: [1, 2]}));
        assert_eq!(
            e["data"]["field"], field,
            "{name} with a list for {field}: {e}"
        );
    }
    // Every CLI command that takes a service id names a bad one.
    for args in [
        &["info", "seven"][..],
        &["start", "seven"],
        &["stop", "seven"],
        &["terminate", "seven"],
        &["add-nodes", "seven", "2"],
        &["remove-nodes", "seven", "2"],
        &["nodes", "seven"],
        &["logs", "seven"],
        &["rename", "seven", "x"],
    ] {
        let args: Vec<&str> = std::iter::once("service")
            .chain(args.iter().copied())
            .collect();
        let out = fe.cli(&args, "");
        assert!(!out.status.success(), "{args:?}");
        assert!(
            text(&out).contains("'seven'") && text(&out).contains("<SID>"),
            "{args:?}: {}",
            text(&out)
        );
    }
    let out = fe.cli(&["service", "add-nodes", "1", "many"], "");
    assert!(text(&out).contains("<COUNT>"), "{}", text(&out));
    let out = fe.cli(&["call", "1", "get_helloworld", "count"], "");
    assert!(!out.status.success());
    assert!(text(&out).contains("NAME=VALUE"), "{}", text(&out));
    let out = fe.cli(&["service", "info", "77"], "");
    assert!(text(&out).contains("no service 77"), "{}", text(&out));

    // Nothing changed: no service, no charge.
    let me = fe.api_ok(Some(&token), "whoami", json!({}));
    assert_eq!(me["credit"], 50, "{me}");
    assert_eq!(
        fe.api_ok(Some(&token), "service.list", json!({})),
        json!([])
    );
    assert!(fe.leftovers().is_empty());
}

#[test]
fn a_manager_that_never_answers_fails_the_service_with_the_reason() {
    let mut setup = FrontendSetup::new();
    // A manager "start" that never serves: the frontend must give up after --failout.
    std::fs::write(
        setup.tree().join("scripts/manager/default-manager-start"),
        "sleep 300 &\n",
    )
    .unwrap();
    setup.extra_args = vec!["--failout".into(), "2".into()];
    let fe = setup.start();
    let token = fe.user(None, "frank", None);
    let service = fe.api_ok(
        Some(&token),
        "service.create",
        json!({"type": "helloworld"}),
    );
    assert_eq!(service["state"], "PREINIT", "{service}");
    let sid = service["sid"].as_i64().unwrap();
    let failed = fe.settle(&token, sid);
    assert_eq!(failed["state"], "ERROR", "{failed}");
    assert!(
        failed["reason"]
            .as_str()
            .unwrap()
            .contains("did not answer within 2 s"),
        "{failed}"
    );
    // Its node was stopped; terminating removes the row.
    wait_until(
        "the manager node to be stopped",
        Duration::from_secs(20),
        || fe.leftovers().is_empty(),
    );
    fe.api_ok(Some(&token), "service.terminate", json!({"sid": sid}));
    assert_eq!(
        fe.api_ok(Some(&token), "service.list", json!({})),
        json!([])
    );
}

#[test]
fn packages_are_installed_only_when_their_components_load_and_match() {
    let dir = tempfile::tempdir().unwrap();
    let services = dir.path().join("services");
    let install = |package: &Path| {
        Command::new(paasm_bin())
            .args(["service", "install"])
            .arg(package)
            .arg("--services-dir")
            .arg(&services)
            .arg("--cache-dir")
            .arg(support::cache_dir())
            .output()
            .unwrap()
    };
    let source = services_dir().join("helloworld");
    let out = install(&source);
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("installed helloworld 0.1.0"),
        "{}",
        text(&out)
    );
    assert!(services.join("helloworld/helloworld-agent.wasm").is_file());

    let copy = |name: &str| {
        let to = dir.path().join(name);
        crate::managers::copy_tree(&source, &to);
        to
    };
    // An altered component: its digest no longer matches.
    let altered = copy("altered");
    let agent = altered.join("helloworld-agent.wasm");
    let mut bytes = std::fs::read(&agent).unwrap();
    bytes.push(0);
    std::fs::write(&agent, bytes).unwrap();
    let out = install(&altered);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("does not match its manifest"),
        "{}",
        text(&out)
    );
    // No digests at all.
    let unsigned = copy("unsigned");
    let manifest = std::fs::read_to_string(unsigned.join("service.toml")).unwrap();
    let stripped: String = manifest
        .lines()
        .filter(|l| !l.starts_with("digest"))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(unsigned.join("service.toml"), stripped).unwrap();
    let out = install(&unsigned);
    assert!(!out.status.success());
    assert!(text(&out).contains("no digest"), "{}", text(&out));
    // A file that is not a component, with a matching digest.
    let bogus = copy("bogus");
    std::fs::write(bogus.join("helloworld-agent.wasm"), b"\0asm\x01\0\0\0").unwrap();
    let digest = {
        use std::fmt::Write;
        let out = Command::new("sha256sum")
            .arg(bogus.join("helloworld-agent.wasm"))
            .output()
            .unwrap();
        let mut d = String::new();
        write!(
            d,
            "sha256:{}",
            String::from_utf8_lossy(&out.stdout)
                .split(' ')
                .next()
                .unwrap()
        )
        .unwrap();
        d
    };
    let manifest = std::fs::read_to_string(bogus.join("service.toml")).unwrap();
    let agent_digest = manifest
        .lines()
        .filter(|l| l.starts_with("digest"))
        .nth(1)
        .unwrap()
        .to_string();
    std::fs::write(
        bogus.join("service.toml"),
        manifest.replace(&agent_digest, &format!("digest = \"{digest}\"")),
    )
    .unwrap();
    let out = install(&bogus);
    assert!(!out.status.success());
    assert!(text(&out).contains("does not load"), "{}", text(&out));
    // The installed package is untouched by the refused ones, and the catalogue lists it.
    assert_eq!(
        std::fs::read_dir(&services).unwrap().count(),
        1,
        "nothing half-written"
    );
    let mut setup = FrontendSetup::new();
    setup.services = services.clone();
    let fe = setup.start();
    let catalogue = fe.api_ok(None, "catalogue", json!({}));
    assert_eq!(catalogue[0]["name"], "helloworld", "{catalogue}");
    assert_eq!(catalogue[0]["version"], "0.1.0", "{catalogue}");
}

#[test]
fn node_time_is_charged_once_across_a_manager_restart() {
    let mut setup = FrontendSetup::new();
    setup.extra_args = vec!["--credit-period".into(), "2".into()];
    let fe = setup.start();
    let token = fe.user(None, "gina", None);
    let sid = fe.running_service(&token);
    let call = |method: &str, params: Value| fe.call(&token, sid, method, params);
    let started = Instant::now();
    call("add_nodes", json!({"count": 1}));
    assert_eq!(fe.settle(&token, sid)["state"], "RUNNING");
    let charged = |fe: &Frontend| -> i64 {
        fe.api_ok(Some(&token), "user.credit", json!({}))["ledger"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| e["reason"].as_str().unwrap().contains("node time"))
            .map(|e| -e["amount"].as_i64().unwrap())
            .sum()
    };
    wait_until("a first charge", Duration::from_secs(30), || {
        charged(&fe) > 0
    });

    // Kill the manager process, then start it again on the same node, as its start script did.
    let node = fe.setup.var().join("nodes/local/1");
    let pid = std::fs::read_to_string(node.join("manager.pid")).unwrap();
    Command::new("kill")
        .args(["-KILL", pid.trim()])
        .status()
        .unwrap();
    wait_until("the manager to be gone", Duration::from_secs(20), || {
        fe.api_ok(Some(&token), "service.get", json!({"sid": sid}))["reachable"] == false
    });
    let manager = fe.api_ok(Some(&token), "service.get", json!({"sid": sid}))["manager"]
        .as_str()
        .unwrap()
        .trim_start_matches("http://")
        .to_string();
    let _restarted = KillOnDrop(
        Command::new(paasm_bin())
            .args(["manager", "--config"])
            .arg(node.join("config.cfg"))
            .args(["--listen", &manager])
            .env("PAASM_SERVICES_DIR", services_dir())
            .env("PAASM_CONFIG_DIR", fe.setup.tree())
            .env("PAASM_CACHE_DIR", support::cache_dir())
            .current_dir(&node)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_until("the manager to be back", Duration::from_secs(60), || {
        let service = fe.api_ok(Some(&token), "service.get", json!({"sid": sid}));
        service["reachable"] == true && service["state"] == "RUNNING"
    });
    std::thread::sleep(Duration::from_secs(3));
    call("shutdown", json!({}));
    assert_eq!(fe.settle(&token, sid)["state"], "STOPPED");
    // The node lived less than `started.elapsed()`: it owes at most one credit per started
    // period of that; a restart that forgot what was billed would charge the first periods twice.
    let limit = (started.elapsed().as_secs() / 2 + 1) as i64;
    let total = charged(&fe);
    assert!(
        (2..=limit).contains(&total),
        "charged {total} credits for a node that lived under {:?} (at most {limit})",
        started.elapsed()
    );
    fe.api_ok(Some(&token), "service.terminate", json!({"sid": sid}));
}

#[test]
fn a_manager_asks_its_frontend_to_terminate_its_service() {
    let fe = FrontendSetup::new().start();
    let token = fe.user(None, "hana", None);
    let sid = fe.running_service(&token);
    let call = |method: &str, params: Value| fe.call(&token, sid, method, params);
    call("add_nodes", json!({"count": 1}));
    assert_eq!(fe.settle(&token, sid)["state"], "RUNNING");
    // The manager releases its nodes, then the frontend (called back with the service's
    // secret) stops the manager and removes the service.
    call("terminate", json!({}));
    wait_until("the service to be terminated", SETTLE, || {
        fe.api_ok(Some(&token), "service.list", json!({})) == json!([])
    });
    wait_until("every process to end", Duration::from_secs(20), || {
        fe.leftovers().is_empty()
    });
}
