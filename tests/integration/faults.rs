//! A guest that traps, panics, loops forever or allocates past its cap ends only that call,
//! with an error that says what happened and carries the guest's own message; the next call
//! works, and a failed call's state writes are discarded. Both instance policies.

use std::time::{Duration, Instant};

use serde_json::json;

use crate::support::{AgentSetup, Connection, component, get, post};

const LIMITS: &str = "[wasm]\nCALL_TIMEOUT_MS = 1000\nMEMORY_LIMIT_MB = 32\n";

async fn faults_are_contained(policy: &str) {
    let setup = AgentSetup::new(&format!(
        "{LIMITS}INSTANCES = {policy}\nREUSE_MAX_CALLS = 50\n"
    ));
    let agent = setup.start(&component("test-faults"));
    let mut conn = Connection::open(agent.addr).await;
    let ok = |reply: serde_json::Value| assert_eq!(reply["result"], "ok", "{reply}");

    ok(conn.call("ok", json!({})).await);

    // A panic: the reply carries the panic message from the guest's stderr.
    let reply = conn
        .call("panic", json!({"message": "the guest gave up"}))
        .await;
    assert_eq!(reply["error"]["code"], -32001, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap();
    assert!(message.contains("the guest gave up"), "{message}");
    assert_eq!(reply["error"]["data"]["kind"], "trap");
    ok(conn.call("ok", json!({})).await);

    // A plain trap.
    let reply = conn.call("trap", json!({})).await;
    assert_eq!(reply["error"]["code"], -32001, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("unreachable"),
        "{reply}"
    );
    ok(conn.call("ok", json!({})).await);

    // An infinite loop is cut off at the deadline, and other calls are served meanwhile.
    let addr = agent.addr;
    let started = Instant::now();
    let spinning = tokio::spawn(async move {
        let mut conn = Connection::open(addr).await;
        conn.call("spin", json!({})).await
    });
    tokio::time::sleep(Duration::from_millis(100)).await;
    ok(conn.call("ok", json!({})).await);
    let reply = spinning.await.unwrap();
    let elapsed = started.elapsed();
    assert_eq!(reply["error"]["code"], -32002, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("deadline of 1s"),
        "{reply}"
    );
    assert!(
        elapsed >= Duration::from_millis(900),
        "stopped early: {elapsed:?}"
    );
    assert!(
        elapsed < Duration::from_secs(10),
        "stopped late: {elapsed:?}"
    );
    ok(conn.call("ok", json!({})).await);

    // A memory bomb fails cleanly at the cap; a modest allocation still works.
    let reply = conn.call("alloc", json!({"mib": 200})).await;
    assert_eq!(reply["error"]["code"], -32003, "{reply}");
    assert!(
        reply["error"]["message"]
            .as_str()
            .unwrap()
            .contains("memory limit of 32 MiB"),
        "{reply}"
    );
    assert!(conn.call("alloc", json!({"mib": 4})).await["result"].is_number());
    ok(conn.call("ok", json!({})).await);

    // Output is captured, not lost and not fatal.
    let reply = conn
        .call("print", json!({"message": "to both streams"}))
        .await;
    assert_eq!(reply["result"], "to both streams");

    // A call that writes state and then traps writes nothing.
    let reply = conn.call("set_then_trap", json!({"key": "k"})).await;
    assert_eq!(reply["error"]["code"], -32001);
    assert_eq!(
        conn.call("get", json!({"key": "k"})).await["result"],
        json!(null)
    );

    // Same for the ConPaaS dialect: the error string carries the guest's message.
    let reply = get(
        agent.addr,
        "panic",
        Some(&json!({"message": "conpaas sees this"})),
    );
    let error = reply.json()["error"].as_str().unwrap().to_string();
    assert!(
        error.starts_with("ERROR: ") && error.contains("conpaas sees this"),
        "{error}"
    );
    assert_eq!(get(agent.addr, "ok", None).json()["result"], "ok");

    // The failures are in the log with the guest's stderr.
    let log = agent.setup.log();
    assert!(log.contains("the guest gave up"), "{log}");
    assert!(log.contains("to both streams"), "{log}");
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_are_contained_with_fresh_instances() {
    faults_are_contained("fresh").await;
}

#[tokio::test(flavor = "multi_thread")]
async fn faults_are_contained_with_reused_instances() {
    faults_are_contained("reuse").await;
}

#[test]
fn state_persists_across_calls_and_restarts() {
    let mut agent = AgentSetup::new("").start(&component("test-faults"));
    for expected in 1..=3 {
        let reply = post(agent.addr, &json!({"method": "count", "id": 1}));
        assert_eq!(reply.json()["result"], expected);
    }
    agent.restart(&component("test-faults"));
    let reply = post(agent.addr, &json!({"method": "count", "id": 1}));
    assert_eq!(reply.json()["result"], 4, "state survives a restart");
    let reply = get(agent.addr, "get", Some(&json!({"key": "count"})));
    assert_eq!(reply.json()["result"], "4");
}
