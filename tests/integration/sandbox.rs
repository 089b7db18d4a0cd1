//! The sandbox, seen from a Python guest: componentize-py components import `wasi:sockets`
//! and the whole of `wasi:filesystem`, and the host links them but grants nothing. A guest
//! that connects to an address gets `PermissionError` (every address is denied); one that
//! opens a file outside its grants finds nothing there (`FileNotFoundError`: an ungranted path
//! does not exist for the guest). Either way the denial reaches the caller in the call's
//! error, nothing of the host's leaks, the host keeps serving, and the next call works.

use std::io::Write;
use std::net::TcpListener;
use std::time::Duration;

use serde_json::json;

use crate::support::{AgentSetup, component, get};

#[test]
fn a_python_guest_is_denied_the_network_and_ungranted_files_and_the_host_keeps_serving() {
    let agent = AgentSetup::new("").start(&component("test-sandbox-py"));

    // A real server the guest is denied: it would answer whoever connects.
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let reply = get(
        agent.addr,
        "connect",
        Some(&json!({"host": "127.0.0.1", "port": port})),
    )
    .json();
    let error = reply["error"]
        .as_str()
        .unwrap_or_else(|| panic!("the connection was allowed: {reply}"));
    assert!(
        error.starts_with(&format!(
            "cannot connect to 127.0.0.1:{port}: PermissionError"
        )),
        "{error}"
    );
    std::thread::sleep(Duration::from_millis(100));
    assert!(
        listener.accept().is_err(),
        "the guest reached the server on port {port}"
    );
    assert_eq!(get(agent.addr, "ping", None).json()["result"], "pong");

    // A file of the host's that the guest was not granted: the exception escapes the guest,
    // which traps; the caller sees the guest's traceback, never the content.
    let dir = tempfile::tempdir().unwrap();
    let secret = dir.path().join("secret.txt");
    std::fs::File::create(&secret)
        .unwrap()
        .write_all(b"the host's secret\n")
        .unwrap();
    let reply = get(
        agent.addr,
        "read_file",
        Some(&json!({"path": secret.display().to_string()})),
    )
    .json();
    let error = reply["error"]
        .as_str()
        .unwrap_or_else(|| panic!("the file was read: {reply}"));
    assert!(!error.contains("the host's secret"), "{error}");
    assert!(error.contains("FileNotFoundError"), "{error}");
    assert!(error.contains(&secret.display().to_string()), "{error}");

    // The host keeps serving, and the guest's next call works.
    assert_eq!(get(agent.addr, "ping", None).json()["result"], "pong");
    let again = get(
        agent.addr,
        "connect",
        Some(&json!({"host": "127.0.0.1", "port": port})),
    )
    .json();
    assert!(again["error"].as_str().is_some(), "{again}");
}
