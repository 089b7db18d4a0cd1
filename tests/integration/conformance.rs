//! The hosting conformance suite: the same cases, kept as data in `tests/conformance/hosting/`,
//! run against every implementation of the logical resource `hosting` (`nginx_vhost` and
//! `apache_vhost` in Rust, `lighttpd_vhost` in Python) through a real `paasm resources`; then
//! the configuration each implementation wrote is checked by the real server it is for
//! (`nginx -t`, `apache2ctl -t`, `lighttpd -tt`), and a real nginx and a real lighttpd serve a
//! created site, its suspend page, and the site again.
//!
//! A case file has a `name` and `[[step]]`s: `call` (a method), `params` (its params; the text
//! `${DATA}` stands for the engine's data directory), then either `expect` (a JSON object the
//! result must contain: every key given must match, recursively) or `error` (the JSON-RPC
//! error code) with an optional `error_param` (the parameter the error must name).

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use serde_json::{Value, json};

use crate::resources::Resources;

/// The resources configuration with `hosting` implemented by `implementation`.
fn config(implementation: &str) -> String {
    config_with(implementation, "")
}

/// The same, with more config attributes for `hosting` (`, removecontent = true`).
fn config_with(implementation: &str, more: &str) -> String {
    // The Python implementation is installed only where it is active: every installed
    // component is loaded when the engine starts, and it is by far the largest.
    let python = if implementation == "lighttpd_vhost" {
        "lighttpd_vhost = \"lighttpd-vhost-py.wasm\"\n"
    } else {
        ""
    };
    format!(
        r#"
[implementations]
unix_home = "account.wasm"
nginx_vhost = "nginx-vhost.wasm"
apache_vhost = "apache-vhost.wasm"
{python}

[resources.account]
implementation = "unix_home"
grants = ["${{DATA}}/homes"]
config = {{ homes = "${{DATA}}/homes" }}

[resources.hosting]
implementation = "{implementation}"
grants = ["${{DATA}}/homes", "${{DATA}}/web"]
config = {{ vhostsdir = "${{DATA}}/web/sites", logsdir = "${{DATA}}/web/logs", suspendskeleton = "${{DATA}}/web/suspended"{more} }}
"#
    )
}

/// The directories the hosting configuration names, with the suspend page.
fn prepare(data: &Path) {
    for dir in ["homes", "web/sites", "web/logs", "web/suspended"] {
        std::fs::create_dir_all(data.join(dir)).unwrap();
    }
    std::fs::write(
        data.join("web/suspended/index.html"),
        "<h1>this site is suspended</h1>\n",
    )
    .unwrap();
}

/// The case files of a conformance suite (`tests/conformance/<suite>/*.toml`), by file name.
pub fn case_files(suite: &str) -> Vec<(String, toml::Table)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("conformance")
        .join(suite);
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "toml"))
        .collect();
    files.sort();
    assert!(!files.is_empty(), "no cases in {}", dir.display());
    files
        .into_iter()
        .map(|f| {
            let text = std::fs::read_to_string(&f).unwrap();
            let table: toml::Table =
                toml::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", f.display()));
            (f.file_name().unwrap().to_string_lossy().into_owned(), table)
        })
        .collect()
}

/// TOML to JSON, with each `(NAME, value)` of `vars` replacing `NAME` in every string.
pub fn case_json(value: &toml::Value, vars: &[(&str, &str)]) -> Value {
    match value {
        toml::Value::String(s) => Value::String(
            vars.iter()
                .fold(s.clone(), |s, (name, value)| s.replace(name, value)),
        ),
        toml::Value::Integer(i) => json!(i),
        toml::Value::Float(f) => json!(f),
        toml::Value::Boolean(b) => json!(b),
        toml::Value::Datetime(d) => Value::String(d.to_string()),
        toml::Value::Array(items) => {
            Value::Array(items.iter().map(|i| case_json(i, vars)).collect())
        }
        toml::Value::Table(t) => Value::Object(
            t.iter()
                .map(|(k, v)| (k.clone(), case_json(v, vars)))
                .collect(),
        ),
    }
}

/// Whether `actual` contains everything in `expected`.
pub fn contains(actual: &Value, expected: &Value) -> bool {
    match (actual, expected) {
        (Value::Object(a), Value::Object(e)) => e
            .iter()
            .all(|(k, v)| a.get(k).is_some_and(|av| contains(av, v))),
        (a, e) => a == e,
    }
}

async fn run_cases(r: &Resources, implementation: &str) {
    let data = r.data.display().to_string();
    run_suite(r, "hosting", implementation, &[("${DATA}", &data)]).await;
}

/// Runs the cases of `tests/conformance/<suite>/` against the resources server `r`, whose
/// active implementation is `implementation`; each `(NAME, value)` of `vars` replaces `NAME`
/// in every string of a case.
pub async fn run_suite(r: &Resources, suite: &str, implementation: &str, vars: &[(&str, &str)]) {
    for (file, case) in case_files(suite) {
        let name = case["name"].as_str().unwrap_or(&file).to_string();
        let steps = case["step"].as_array().unwrap();
        for (i, step) in steps.iter().enumerate() {
            let at = format!("{implementation}: {file} ({name}), step {}", i + 1);
            let method = step["call"].as_str().unwrap();
            let params = case_json(&step["params"], vars);
            let reply = r.call(method, params).await;
            match step.get("error") {
                Some(code) => {
                    let code = code.as_integer().unwrap();
                    assert_eq!(reply["error"]["code"], json!(code), "{at}: {reply}");
                    if let Some(param) = step.get("error_param").and_then(|p| p.as_str()) {
                        let named: Vec<&str> = reply["error"]["data"]["parameters"]
                            .as_array()
                            .map(|list| list.iter().filter_map(|p| p["name"].as_str()).collect())
                            .unwrap_or_default();
                        assert!(named.contains(&param), "{at}: {param} not named in {reply}");
                    }
                }
                None => {
                    assert!(reply["error"].is_null(), "{at}: {reply}");
                    if let Some(expected) = step.get("expect") {
                        let expected = case_json(expected, vars);
                        assert!(
                            contains(&reply["result"], &expected),
                            "{at}: {} does not contain {expected}",
                            reply["result"]
                        );
                    }
                }
            }
        }
    }
}

/// A free TCP port on loopback.
fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap()
        .port()
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

fn server(name: &str) -> PathBuf {
    ["/usr/sbin", "/usr/bin", "/sbin"]
        .iter()
        .map(|d| Path::new(d).join(name))
        .find(|p| p.is_file())
        .unwrap_or_else(|| panic!("{name} is not installed: `cargo xtask test` installs it"))
}

/// A minimal nginx configuration serving the sites in `sites` on loopback.
fn nginx_conf(dir: &Path, sites: &Path) -> PathBuf {
    let d = dir.display();
    let user = if is_root() { "user root;\n" } else { "" };
    let conf = format!(
        "{user}daemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log;\nevents {{}}\nhttp {{\n  access_log off;\n  client_body_temp_path {d}/body;\n  proxy_temp_path {d}/proxy;\n  fastcgi_temp_path {d}/fastcgi;\n  uwsgi_temp_path {d}/uwsgi;\n  scgi_temp_path {d}/scgi;\n  include {}/*.conf;\n}}\n",
        sites.display()
    );
    let path = dir.join("nginx.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

/// GET http://127.0.0.1:port/ with a Host header; the body.
fn fetch(port: u16, host: &str) -> String {
    use std::io::{Read, Write};
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(10)))
        .unwrap();
    write!(stream, "GET / HTTP/1.0\r\nHost: {host}\r\n\r\n").unwrap();
    let mut text = String::new();
    let _ = stream.read_to_string(&mut text);
    text
}

/// A web server run by a test, stopped with it (even when the test fails). SIGTERM lets the
/// master stop its workers; killing the master alone would leave them behind.
struct Server(std::process::Child);

impl Drop for Server {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.0.id().to_string()])
            .status();
        for _ in 0..200 {
            if self.0.try_wait().ok().flatten().is_some() {
                return;
            }
            std::thread::sleep(Duration::from_millis(25));
        }
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn wait_for(port: u16) {
    for _ in 0..200 {
        if std::net::TcpStream::connect(("127.0.0.1", port)).is_ok() {
            return;
        }
        std::thread::sleep(Duration::from_millis(25));
    }
    panic!("nothing listens on port {port}");
}

/// What the nginx and lighttpd tests share: a `paasm resources` with `hosting` implemented by
/// `implementation`, account alice, the whole suite run, then `served.example` created on an
/// ephemeral loopback port with a welcome page. Answers the directory (kept until the test
/// ends), the engine, the port and the site's address.
async fn suite_then_a_served_site(
    implementation: &str,
) -> (tempfile::TempDir, Resources, u16, Value) {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    prepare(&data);
    let r = Resources::start(&config(implementation), &data);
    let alice = r
        .call("create", json!({"resource": "account", "key": "alice"}))
        .await;
    assert!(alice["error"].is_null(), "{alice}");
    run_cases(&r, implementation).await;

    let port = free_port();
    let site =
        json!({"resource": "hosting", "key": "served.example", "parent": [["account", "alice"]]});
    let mut create = site.clone();
    create["params"] = json!({"ip": "127.0.0.1", "port": port});
    let created = r.call("create", create).await;
    assert!(created["error"].is_null(), "{created}");
    let docroot = created["result"]["params"]["docrootpath"]
        .as_str()
        .unwrap()
        .to_string();
    std::fs::write(
        Path::new(&docroot).join("index.html"),
        "<h1>welcome to served.example</h1>\n",
    )
    .unwrap();
    (dir, r, port, site)
}

#[tokio::test(flavor = "multi_thread")]
async fn nginx_vhost_passes_the_suite_and_nginx_serves_its_sites() {
    // A real nginx serves what the implementation wrote.
    let (dir, r, port, site) = suite_then_a_served_site("nginx_vhost").await;
    let data = r.data.clone();
    let nginx = server("nginx");
    let conf = nginx_conf(dir.path(), &data.join("web/sites"));
    let check = Command::new(&nginx)
        .arg("-t")
        .arg("-c")
        .arg(&conf)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "nginx -t: {}",
        String::from_utf8_lossy(&check.stderr)
    );
    let _nginx = Server(
        Command::new(&nginx)
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(port);
    let reload = || {
        let status = Command::new(&nginx)
            .args(["-s", "reload", "-c"])
            .arg(&conf)
            .status()
            .unwrap();
        assert!(status.success());
        std::thread::sleep(Duration::from_millis(500));
    };
    let page = fetch(port, "served.example");
    assert!(page.contains("welcome to served.example"), "{page}");
    let suspended = r.call("suspend", site.clone()).await;
    assert!(suspended["error"].is_null(), "{suspended}");
    reload();
    let page = fetch(port, "served.example");
    assert!(page.contains("this site is suspended"), "{page}");
    let resumed = r.call("resume", site.clone()).await;
    assert!(resumed["error"].is_null(), "{resumed}");
    reload();
    let page = fetch(port, "served.example");
    assert!(page.contains("welcome to served.example"), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn apache_vhost_passes_the_suite_and_apache_accepts_its_sites() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    prepare(&data);
    let r = Resources::start(&config("apache_vhost"), &data);
    let alice = r
        .call("create", json!({"resource": "account", "key": "alice"}))
        .await;
    assert!(alice["error"].is_null(), "{alice}");
    run_cases(&r, "apache_vhost").await;

    let created = r
        .call(
            "create",
            json!({"resource": "hosting", "key": "apache.example", "parent": [["account", "alice"]], "params": {"ip": "127.0.0.1", "port": free_port(), "index": true}}),
        )
        .await;
    assert!(created["error"].is_null(), "{created}");
    let d = dir.path().display();
    let modules = "/usr/lib/apache2/modules";
    let conf = format!(
        "ServerRoot /etc/apache2\nLoadModule mpm_event_module {modules}/mod_mpm_event.so\nLoadModule authz_core_module {modules}/mod_authz_core.so\nLoadModule dir_module {modules}/mod_dir.so\nLoadModule autoindex_module {modules}/mod_autoindex.so\nLoadModule mime_module {modules}/mod_mime.so\nPidFile {d}/apache.pid\nErrorLog {d}/apache-error.log\nServerName localhost\nListen 127.0.0.1:{}\nIncludeOptional {}/*.conf\n",
        free_port(),
        data.join("web/sites").display()
    );
    let conf_path = dir.path().join("apache.conf");
    std::fs::write(&conf_path, conf).unwrap();
    let check = Command::new(server("apache2ctl"))
        .arg("-t")
        .env("APACHE_ARGUMENTS", format!("-f {}", conf_path.display()))
        .env("APACHE_RUN_DIR", dir.path())
        .env("APACHE_LOG_DIR", dir.path())
        .env("APACHE_PID_FILE", dir.path().join("apache.pid"))
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "apache2ctl -t: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

/// A minimal lighttpd configuration: its own socket on loopback (`port`), the access log
/// module the sites' `accesslog.filename` needs, and the sites in `sites`.
fn lighttpd_conf(dir: &Path, sites: &Path, port: u16) -> PathBuf {
    let d = dir.display();
    let empty = dir.join("lighttpd-root");
    std::fs::create_dir_all(&empty).unwrap();
    let conf = format!(
        "server.modules = ( \"mod_accesslog\" )\nserver.document-root = \"{}\"\nserver.bind = \"127.0.0.1\"\nserver.port = {port}\nserver.pid-file = \"{d}/lighttpd.pid\"\nserver.errorlog = \"{d}/lighttpd-error.log\"\ninclude \"{}/*.conf\"\n",
        empty.display(),
        sites.display()
    );
    let path = dir.join("lighttpd.conf");
    std::fs::write(&path, conf).unwrap();
    path
}

/// Runs lighttpd on `conf` until dropped, waiting until it serves `port`.
fn start_lighttpd(conf: &Path, port: u16) -> Server {
    let lighttpd = Server(
        Command::new(server("lighttpd"))
            .arg("-D")
            .arg("-f")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap(),
    );
    wait_for(port);
    lighttpd
}

/// `lighttpd -tt -f conf` succeeds: the configuration parses and the modules it names load.
fn lighttpd_accepts(conf: &Path) {
    let check = Command::new(server("lighttpd"))
        .arg("-tt")
        .arg("-f")
        .arg(conf)
        .output()
        .unwrap();
    assert!(
        check.status.success(),
        "lighttpd -tt: {}{}",
        String::from_utf8_lossy(&check.stdout),
        String::from_utf8_lossy(&check.stderr)
    );
}

#[tokio::test(flavor = "multi_thread")]
async fn lighttpd_vhost_in_python_passes_the_suite_and_lighttpd_serves_its_sites() {
    // Everything the suite left behind, and a site served for real, pass lighttpd's check.
    let (dir, r, port, site) = suite_then_a_served_site("lighttpd_vhost").await;
    let data = r.data.clone();
    let described = r.call("describe", json!({"resource": "hosting"})).await;
    assert_eq!(
        described["result"]["physical"], "lighttpd_vhost",
        "{described}"
    );
    // The sites' listing is what the implementation wrote, enumerated from its files.
    let listed = r
        .call(
            "list",
            json!({"resource": "hosting", "parent": [["account", "alice"]]}),
        )
        .await;
    let keys = listed["result"]["keys"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert!(keys.contains(&json!("served.example")), "{listed}");
    let conf = lighttpd_conf(dir.path(), &data.join("web/sites"), free_port());
    lighttpd_accepts(&conf);
    // Only the served site is left, so that lighttpd binds no address but the ephemeral one.
    for key in keys.iter().filter(|k| *k != "served.example") {
        let other = json!({"resource": "hosting", "key": key, "parent": [["account", "alice"]]});
        let deleted = r.call("delete", other).await;
        assert!(deleted["error"].is_null(), "{deleted}");
    }
    let left: Vec<String> = std::fs::read_dir(data.join("web/sites"))
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(left, ["served.example.conf"]);

    // lighttpd reads its configuration when it starts: each change is seen by a new one.
    let page = {
        let _lighttpd = start_lighttpd(&conf, port);
        fetch(port, "served.example")
    };
    assert!(page.contains("welcome to served.example"), "{page}");
    let suspended = r.call("suspend", site.clone()).await;
    assert!(suspended["error"].is_null(), "{suspended}");
    assert_eq!(suspended["result"]["suspended"], true, "{suspended}");
    lighttpd_accepts(&conf);
    let page = {
        let _lighttpd = start_lighttpd(&conf, port);
        fetch(port, "served.example")
    };
    assert!(page.contains("this site is suspended"), "{page}");
    let resumed = r.call("resume", site.clone()).await;
    assert!(resumed["error"].is_null(), "{resumed}");
    lighttpd_accepts(&conf);
    let page = {
        let _lighttpd = start_lighttpd(&conf, port);
        fetch(port, "served.example")
    };
    assert!(page.contains("welcome to served.example"), "{page}");
}

#[tokio::test(flavor = "multi_thread")]
async fn switching_the_active_implementation_switches_behaviour() {
    for (implementation, marker) in [
        ("nginx_vhost", "server_name"),
        ("apache_vhost", "<VirtualHost"),
        ("lighttpd_vhost", "$HTTP[\"host\"]"),
    ] {
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        prepare(&data);
        let r = Resources::start(&config(implementation), &data);
        let described = r.call("describe", json!({"resource": "hosting"})).await;
        assert_eq!(
            described["result"]["physical"], implementation,
            "{described}"
        );
        r.call("create", json!({"resource": "account", "key": "bob"}))
            .await;
        let created = r
            .call(
                "create",
                json!({"resource": "hosting", "key": "switch.example", "parent": [["account", "bob"]], "params": {"ip": "127.0.0.1"}}),
            )
            .await;
        assert!(created["error"].is_null(), "{created}");
        let written = std::fs::read_to_string(data.join("web/sites/switch.example.conf")).unwrap();
        assert!(written.contains(marker), "{implementation}: {written}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn delete_honours_removecontent() {
    for implementation in ["nginx_vhost", "apache_vhost", "lighttpd_vhost"] {
        for (remove, more) in [(false, ""), (true, ", removecontent = true")] {
            let dir = tempfile::tempdir().unwrap();
            let data = dir.path().join("data");
            prepare(&data);
            let r = Resources::start(&config_with(implementation, more), &data);
            r.call("create", json!({"resource": "account", "key": "carol"}))
                .await;
            let site = json!({"resource": "hosting", "key": "gone.example", "parent": [["account", "carol"]]});
            let mut create = site.clone();
            create["params"] = json!({"ip": "127.0.0.1"});
            let created = r.call("create", create).await;
            let docroot =
                PathBuf::from(created["result"]["params"]["docrootpath"].as_str().unwrap());
            assert!(
                docroot.join("index.html").is_file(),
                "{implementation}: {created}"
            );
            let deleted = r.call("delete", site).await;
            assert!(deleted["error"].is_null(), "{deleted}");
            assert!(!data.join("web/sites/gone.example.conf").exists());
            assert_eq!(
                docroot.exists(),
                !remove,
                "{implementation} with removecontent = {remove}"
            );
        }
    }
}
