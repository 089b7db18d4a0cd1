//! What every integration test needs: the real `paasm` binary started as a child process on an
//! ephemeral loopback port with a configuration written to a temporary directory, and small
//! HTTP clients that speak exactly what the original ConPaaS clients sent.
//!
//! `cargo xtask test` sets `PAASM_BIN` and `PAASM_COMPONENTS`; without them the release build
//! under the target directory is used.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Output, Stdio};
use std::time::Duration;

use serde_json::Value;

/// How long any single HTTP exchange in a test may take before the test fails.
pub const IO_TIMEOUT: Duration = Duration::from_secs(30);

pub fn target_dir() -> PathBuf {
    match std::env::var_os("CARGO_TARGET_DIR") {
        Some(dir) => PathBuf::from(dir),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("../target"),
    }
}

/// The `paasm` binary under test.
pub fn paasm_bin() -> PathBuf {
    std::env::var_os("PAASM_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("release/paasm"))
}

/// A built guest component by name (`helloworld-agent`).
pub fn component(name: &str) -> PathBuf {
    let dir = std::env::var_os("PAASM_COMPONENTS")
        .map(PathBuf::from)
        .unwrap_or_else(|| target_dir().join("components"));
    let path = dir.join(format!("{name}.wasm"));
    assert!(
        path.is_file(),
        "component {} is missing: run `cargo xtask build-guests` (or `cargo xtask test`)",
        path.display()
    );
    path
}

/// The precompiled-component cache shared by all tests of a run.
/// The configuration tree of the repository.
pub fn config_tree() -> PathBuf {
    std::env::var_os("PAASM_CONFIG_DIR")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../config"))
}

pub fn cache_dir() -> PathBuf {
    target_dir().join("test-cache")
}

/// An agent configuration in a fresh temporary directory.
pub struct AgentSetup {
    pub dir: tempfile::TempDir,
    pub config: PathBuf,
    /// The precompiled-component cache (shared by every test unless changed).
    pub cache_dir: PathBuf,
    /// More arguments for `paasm agent`.
    pub extra_args: Vec<String>,
    /// A `ulimit -v` in KiB to run the agent under, to see how it copes with little address
    /// space.
    pub address_space_kib: Option<u64>,
}

impl AgentSetup {
    /// The standard `[agent]` section plus `extra` (more keys or sections).
    pub fn new(extra: &str) -> Self {
        let dir = tempfile::tempdir().expect("temporary directory");
        let root = dir.path().display().to_string();
        let text = format!(
            "[agent]\nLOG_FILE = {root}/agent.log\nETC = {root}/etc\nVAR_TMP = {root}/tmp\nVAR_CACHE = {root}/cache\nVAR_RUN = {root}/run\nSTRING_TO_GENERATE = helloworld-test\n{extra}\n"
        );
        Self::with_text(dir, &text)
    }

    /// A configuration file with exactly `text`.
    pub fn raw(text: &str) -> Self {
        Self::with_text(tempfile::tempdir().expect("temporary directory"), text)
    }

    fn with_text(dir: tempfile::TempDir, text: &str) -> Self {
        let config = dir.path().join("agent.cfg");
        std::fs::write(&config, text).expect("write config");
        Self {
            dir,
            config,
            cache_dir: cache_dir(),
            extra_args: Vec::new(),
            address_space_kib: None,
        }
    }

    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("agent.log")).unwrap_or_default()
    }

    fn command(&self, component: &Path) -> Command {
        let mut cmd = match self.address_space_kib {
            None => Command::new(paasm_bin()),
            Some(kib) => {
                let mut sh = Command::new("sh");
                sh.arg("-c")
                    .arg(format!("ulimit -v {kib} && exec \"$0\" \"$@\""))
                    .arg(paasm_bin());
                sh
            }
        };
        cmd.arg("agent")
            .arg("--config")
            .arg(&self.config)
            .arg("--component")
            .arg(component)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .arg("--cache-dir")
            .arg(&self.cache_dir)
            .args(&self.extra_args);
        cmd
    }

    fn spawn_piped(&self, component: &Path) -> Child {
        self.command(component)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .expect("spawn paasm")
    }

    /// Runs `paasm agent` expecting it to exit (a configuration error), with its output.
    pub fn run_to_exit(&self, component: &Path) -> Output {
        let mut child = self.spawn_piped(component);
        let deadline = std::time::Instant::now() + IO_TIMEOUT;
        loop {
            if child.try_wait().expect("wait").is_some() {
                return child.wait_with_output().expect("output");
            }
            if std::time::Instant::now() > deadline {
                let _ = child.kill();
                panic!("paasm agent did not exit on a bad configuration");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Starts `paasm agent` serving `component` and waits until it listens.
    pub fn start(self, component: &Path) -> Agent {
        let (child, scheme, addr) = self.spawn(component);
        Agent {
            child,
            addr,
            scheme,
            setup: self,
        }
    }

    fn spawn(&self, component: &Path) -> (Child, &'static str, SocketAddr) {
        let mut child = self.spawn_piped(component);
        let line = match first_line(&mut child, Duration::from_secs(120)) {
            Some(line) => line,
            other => {
                let _ = child.kill();
                let output = child.wait_with_output().expect("output");
                panic!(
                    "paasm agent did not start ({other:?}); stderr:\n{}",
                    String::from_utf8_lossy(&output.stderr)
                );
            }
        };
        let url = line
            .strip_prefix("paasm agent listening on ")
            .unwrap_or_else(|| panic!("unexpected first line {line:?}"));
        let (scheme, addr) = match url.split_once("://") {
            Some(("http", addr)) => ("http", addr),
            Some(("https", addr)) => ("https", addr),
            _ => panic!("unexpected address {url:?}"),
        };
        (child, scheme, addr.parse().expect("listen address"))
    }
}

/// The first line the child prints on stdout, if it prints one within `timeout`; the rest of
/// its stdout is drained in the background.
pub fn first_line(child: &mut Child, timeout: Duration) -> Option<String> {
    let stdout = child.stdout.take().expect("stdout");
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut lines = BufReader::new(stdout).lines();
        let first = lines.next().and_then(Result::ok);
        let _ = tx.send(first);
        for _ in lines {}
    });
    rx.recv_timeout(timeout).ok().flatten()
}

/// A process the test started, killed when the test ends, however it ends.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// A running `paasm agent`; killed when dropped.
pub struct Agent {
    child: Child,
    pub addr: SocketAddr,
    /// `http` or `https`.
    pub scheme: &'static str,
    pub setup: AgentSetup,
}

impl Agent {
    /// The agent's process id.
    pub fn pid(&self) -> u32 {
        self.child.id()
    }

    /// Stops the agent with SIGTERM and returns its exit status and stderr.
    pub fn stop(mut self) -> (ExitStatus, String) {
        let pid = self.child.id().to_string();
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = std::time::Instant::now() + IO_TIMEOUT;
        while self.child.try_wait().expect("wait").is_none() {
            assert!(
                std::time::Instant::now() < deadline,
                "agent ignored SIGTERM"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        let mut stderr = String::new();
        if let Some(mut err) = self.child.stderr.take() {
            let _ = err.read_to_string(&mut stderr);
        }
        (self.child.wait().expect("status"), stderr)
    }

    /// Restarts the same configuration and component (state survives).
    pub fn restart(&mut self, component: &Path) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let (child, scheme, addr) = self.setup.spawn(component);
        self.child = child;
        self.scheme = scheme;
        self.addr = addr;
    }
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A raw HTTP response.
#[derive(Debug)]
pub struct RawResponse {
    pub status: u16,
    pub headers: Vec<(String, String)>,
    pub body: Vec<u8>,
}

impl RawResponse {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    pub fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }

    pub fn json(&self) -> Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("body is not JSON ({e}): {:?}", self.text()))
    }
}

/// Sends raw request bytes and reads the response to end of stream, as the original clients
/// did: this only returns if the server closes the connection.
pub fn exchange(addr: SocketAddr, request: &[u8]) -> RawResponse {
    let mut stream = TcpStream::connect(addr).expect("connect");
    stream.set_read_timeout(Some(IO_TIMEOUT)).unwrap();
    stream.write_all(request).expect("write request");
    let mut bytes = Vec::new();
    stream
        .read_to_end(&mut bytes)
        .expect("the server must close the connection after the response");
    parse_response(&bytes)
}

fn parse_response(bytes: &[u8]) -> RawResponse {
    let split = bytes
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no header end in {:?}", String::from_utf8_lossy(bytes)));
    let head = String::from_utf8_lossy(&bytes[..split]).into_owned();
    let mut lines = head.split("\r\n");
    let status_line = lines.next().unwrap_or_default();
    let status = status_line
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or_else(|| panic!("bad status line {status_line:?}"));
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_string(), v.trim().to_string()))
        .collect();
    RawResponse {
        status,
        headers,
        body: bytes[split + 4..].to_vec(),
    }
}

/// What the original Python client sends for a GET method call.
pub fn get(addr: SocketAddr, method: &str, params: Option<&Value>) -> RawResponse {
    let mut query = format!("method={method}&id=1");
    if let Some(params) = params {
        let encoded: String = url_encode(&params.to_string());
        query = format!("params={encoded}&{query}");
    }
    let request =
        format!("GET /?{query} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: application/json\r\n\r\n");
    exchange(addr, request.as_bytes())
}

fn url_encode(text: &str) -> String {
    text.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b' ' => "+".to_string(),
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// What the original Python client sends for a POST method call.
pub fn post(addr: SocketAddr, body: &Value) -> RawResponse {
    post_raw(addr, "application/json", body.to_string().as_bytes())
}

/// A POST with any content type and body.
pub fn post_raw(addr: SocketAddr, content_type: &str, body: &[u8]) -> RawResponse {
    let mut request = format!(
        "POST / HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\n\r\n",
        body.len()
    )
    .into_bytes();
    request.extend_from_slice(body);
    exchange(addr, &request)
}

/// The original v1.x client's multipart boundary: unquoted and containing `$`.
pub const ORIGINAL_BOUNDARY: &str = "----------_BoUnDaRy_StRiNg_$";

/// An UPLOAD exactly as the original client builds it: `fields` are (name, filename, data).
pub fn upload(
    addr: SocketAddr,
    method: &str,
    fields: &[(&str, Option<&str>, &[u8])],
) -> RawResponse {
    let b = ORIGINAL_BOUNDARY;
    let mut body =
        format!("--{b}\r\nContent-Disposition: form-data; name=\"method\"\r\n\r\n{method}\r\n")
            .into_bytes();
    for (name, filename, data) in fields {
        match filename {
            Some(filename) => body.extend_from_slice(
                format!(
                    "--{b}\r\nContent-Disposition: form-data; name=\"{name}\"; filename=\"{filename}\"\r\nContent-Type: application/octet-stream\r\n\r\n"
                )
                .as_bytes(),
            ),
            None => body.extend_from_slice(
                format!("--{b}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n").as_bytes(),
            ),
        }
        body.extend_from_slice(data);
        body.extend_from_slice(b"\r\n");
    }
    body.extend_from_slice(format!("--{b}--\r\n").as_bytes());
    post_raw(addr, &format!("multipart/form-data; boundary={b}"), &body)
}

/// A keep-alive HTTP/1.1 connection for JSON-RPC 2.0.
pub struct Connection {
    sender: hyper::client::conn::http1::SendRequest<http_body_util::Full<bytes::Bytes>>,
}

impl Connection {
    pub async fn open(addr: SocketAddr) -> Self {
        let stream = tokio::net::TcpStream::connect(addr).await.expect("connect");
        let io = hyper_util::rt::TokioIo::new(stream);
        let (sender, conn) = hyper::client::conn::http1::handshake(io)
            .await
            .expect("handshake");
        tokio::spawn(conn);
        Self { sender }
    }

    /// POSTs `body` as JSON; returns the status and the parsed body (`Null` when empty).
    pub async fn post(&mut self, body: &Value) -> (u16, Value) {
        use http_body_util::BodyExt;
        let request = hyper::Request::post("/")
            .header("Host", "paasm")
            .header("Content-Type", "application/json")
            .body(http_body_util::Full::new(bytes::Bytes::from(
                body.to_string(),
            )))
            .unwrap();
        self.sender
            .ready()
            .await
            .expect("the server closed a JSON-RPC 2.0 connection");
        let response = tokio::time::timeout(IO_TIMEOUT, self.sender.send_request(request))
            .await
            .expect("reply in time")
            .expect("send request");
        let status = response.status().as_u16();
        let bytes = response
            .into_body()
            .collect()
            .await
            .expect("body")
            .to_bytes();
        let value = if bytes.is_empty() {
            Value::Null
        } else {
            serde_json::from_slice(&bytes).expect("JSON body")
        };
        (status, value)
    }

    /// Calls a JSON-RPC 2.0 method and returns the whole reply object.
    pub async fn call(&mut self, method: &str, params: Value) -> Value {
        let (status, reply) = self
            .post(
                &serde_json::json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1}),
            )
            .await;
        assert_eq!(status, 200, "{reply}");
        reply
    }

    /// Whether the server still holds the connection open.
    pub fn is_open(&self) -> bool {
        !self.sender.is_closed()
    }
}
