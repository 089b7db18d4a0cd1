//! The original ConPaaS dialect against the helloworld agent: GET, POST and UPLOAD exactly as
//! the original clients send them, the envelope, the protocol errors and connection close.

use serde_json::{Value, json};

use crate::support::{AgentSetup, component, exchange, get, post, post_raw, upload};

fn helloworld() -> crate::support::Agent {
    AgentSetup::new("").start(&component("helloworld-agent"))
}

#[test]
fn helloworld_get_post_and_upload() {
    let agent = helloworld();
    let addr = agent.addr;

    // Before startup: the seed's error, id echoed as the string it came as, no result key.
    let reply = get(addr, "get_helloworld", None);
    assert_eq!(reply.status, 200);
    assert_eq!(
        reply.json(),
        json!({"error": "ERROR: Wrong state to get_helloworld", "id": "1"})
    );
    assert!(reply.json().get("result").is_none());

    // startup by POST, with an integer id echoed as an integer.
    let reply = post(addr, &json!({"method": "startup", "params": {}, "id": 7}));
    assert_eq!(reply.status, 200);
    assert_eq!(reply.json(), json!({"result": {}, "error": null, "id": 7}));

    // get_helloworld: double-wrapped result, as the seed's agent answers.
    let reply = get(addr, "get_helloworld", None);
    assert_eq!(
        reply.json(),
        json!({"result": {"result": "helloworld-test"}, "error": null, "id": "1"})
    );
    assert_eq!(reply.header("connection"), Some("close"));

    // The host's own liveness probe.
    let reply = get(addr, "check_agent_process", None);
    assert_eq!(
        reply.json(),
        json!({"result": {}, "error": null, "id": "1"})
    );

    // UPLOAD with the original client's unquoted `$` boundary; the id is fixed to 1.
    let reply = upload(
        addr,
        "upload_greeting",
        &[("greeting", Some("greeting.txt"), b"hello from a file\n")],
    );
    assert_eq!(reply.status, 200, "{}", reply.text());
    assert_eq!(
        reply.json(),
        json!({"result": {"bytes": 18}, "error": null, "id": 1})
    );
    let reply = get(addr, "get_helloworld", None);
    assert_eq!(
        reply.json()["result"],
        json!({"result": "hello from a file"})
    );

    // The guest's log records reach the LOG_FILE.
    let log = agent.setup.log();
    assert!(log.contains("Agent started up"), "{log}");
}

#[test]
fn params_absent_null_or_empty_list_mean_none() {
    let agent = helloworld();
    for params in [json!(null), json!([]), json!({})] {
        let reply = post(
            agent.addr,
            &json!({"method": "startup", "params": params, "id": "1"}),
        );
        assert_eq!(
            reply.json(),
            json!({"result": {}, "error": null, "id": "1"})
        );
    }
    // The PHP frontend always sends params=[] on GET, and an extra "jsonrpc" key on POST is
    // only JSON-RPC 2.0 when it says "2.0".
    let reply = get(agent.addr, "get_helloworld", Some(&json!([])));
    assert_eq!(reply.json()["result"], json!({"result": "helloworld-test"}));
    let reply = post(
        agent.addr,
        &json!({"method": "startup", "id": 1, "jsonrpc": "1.0"}),
    );
    assert_eq!(reply.json(), json!({"result": {}, "error": null, "id": 1}));
}

#[test]
fn namespaces_paths_and_content_types() {
    let agent = helloworld();
    let addr = agent.addr;

    // A GET method called by POST is not found, as in the original.
    let reply = post(addr, &json!({"method": "get_helloworld", "id": "1"}));
    assert_eq!(reply.status, 404);
    assert_eq!(reply.text().trim(), "method not found");
    // And a POST method called by GET.
    let reply = get(addr, "startup", None);
    assert_eq!(reply.status, 404);
    // Unknown method.
    let reply = get(addr, "no_such_method", None);
    assert_eq!(reply.status, 404);

    // Only path / is served.
    let reply = exchange(
        addr,
        b"GET /other?method=get_helloworld&id=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n",
    );
    assert_eq!(reply.status, 404);

    // Content-Type is required, even on GET.
    let reply = exchange(
        addr,
        b"GET /?method=get_helloworld&id=1 HTTP/1.1\r\nHost: x\r\n\r\n",
    );
    assert_eq!(reply.status, 415);
    let reply = post_raw(addr, "text/plain", b"{}");
    assert_eq!(reply.status, 415);
    // Other JSON content types of the original are accepted.
    for ct in [
        "application/json-rpc",
        "application/jsonrequest",
        "application/json; charset=utf-8",
    ] {
        let request = format!(
            "GET /?method=check_agent_process&id=1 HTTP/1.1\r\nHost: x\r\nContent-Type: {ct}\r\n\r\n"
        );
        assert_eq!(exchange(addr, request.as_bytes()).status, 200, "{ct}");
    }

    // Other verbs.
    let reply = exchange(
        addr,
        b"PUT / HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{}",
    );
    assert_eq!(reply.status, 405);

    // Missing method and missing id get clear replies, never a dropped connection.
    let reply = exchange(
        addr,
        b"GET /?id=1 HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\r\n",
    );
    assert_eq!(
        (reply.status, reply.text().trim()),
        (400, "Did not specify method")
    );
    let reply = post(addr, &json!({"params": {}, "id": 1}));
    assert_eq!(
        (reply.status, reply.text().trim()),
        (400, "Did not specify method")
    );
    let reply = post(addr, &json!({"method": "startup"}));
    assert_eq!(
        (reply.status, reply.text().trim()),
        (400, "Did not specify id")
    );
    let reply = get(addr, "check_agent_process", None);
    assert_eq!(reply.status, 200, "the agent still serves");

    // Broken JSON.
    let reply = post_raw(addr, "application/json", b"{\"method\": ");
    assert_eq!(reply.status, 400);
    assert!(reply.text().contains("invalid JSON"), "{}", reply.text());
}

#[test]
fn bad_parameters_are_named_before_the_guest_runs() {
    let agent = AgentSetup::new("").start(&component("test-types"));
    // The original's message for a string where an integer belongs.
    let reply = post(
        agent.addr,
        &json!({"method": "add", "params": {"a": "1", "b": 2}, "id": 1}),
    );
    assert_eq!(
        reply.json(),
        json!({"error": "ERROR: Expected an integer value for \"a\"", "id": 1})
    );
    let reply = post(
        agent.addr,
        &json!({"method": "add", "params": {"a": 1}, "id": 1}),
    );
    let error = reply.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains("\"b\""), "{error}");
    let reply = post(
        agent.addr,
        &json!({"method": "add", "params": {"a": 1, "b": 2, "c": 3}, "id": 1}),
    );
    let error = reply.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains("\"c\""), "{error}");
    let reply = get(agent.addr, "echo_u8", Some(&json!({"value": 256})));
    assert_eq!(
        reply.json()["error"],
        json!("ERROR: Expected an integer value between 0 and 255 for \"value\"")
    );
    let reply = post(
        agent.addr,
        &json!({"method": "add", "params": {"a": 40, "b": 2}, "id": 1}),
    );
    assert_eq!(reply.json(), json!({"result": 42, "error": null, "id": 1}));
}

#[test]
fn uploads_take_files_and_text_fields() {
    let agent = AgentSetup::new("").start(&component("test-types"));
    let reply = upload(
        agent.addr,
        "upload",
        &[
            ("file", Some("data.bin"), b"first line\nsecond line\n"),
            ("note", None, b"a note"),
        ],
    );
    assert_eq!(
        reply.json(),
        json!({"result": {"size": 23, "first_line": "first line", "note": "a note"}, "error": null, "id": 1})
    );
    // Without the optional field.
    let reply = upload(agent.addr, "upload", &[("file", Some("x"), b"abc")]);
    assert_eq!(reply.json()["result"]["note"], Value::Null);
    // Without the required file.
    let reply = upload(agent.addr, "upload", &[("note", None, b"x")]);
    let error = reply.json()["error"].as_str().unwrap().to_string();
    assert!(error.contains("\"file\""), "{error}");
    // An UPLOAD method is not reachable by POST.
    let reply = post(
        agent.addr,
        &json!({"method": "upload", "params": {}, "id": 1}),
    );
    assert_eq!(reply.status, 404);
}

#[tokio::test(flavor = "multi_thread")]
async fn the_client_speaks_the_dialect_to_a_real_agent() {
    use paasm::rpc::Verb;
    use paasm::rpc::client::{ClientError, call};
    use std::time::Duration;

    let agent = helloworld();
    let none = serde_json::Map::new();
    let timeout = Duration::from_secs(10);
    let err = call(agent.addr, Verb::Get, "get_helloworld", &none, timeout)
        .await
        .unwrap_err();
    assert_eq!(
        err,
        ClientError::Remote("ERROR: Wrong state to get_helloworld".into())
    );
    assert_eq!(
        call(agent.addr, Verb::Post, "startup", &none, timeout)
            .await
            .unwrap(),
        json!({})
    );
    let reply = call(agent.addr, Verb::Get, "get_helloworld", &none, timeout)
        .await
        .unwrap();
    assert_eq!(reply, json!({"result": "helloworld-test"}));
    // A method in the wrong namespace is a protocol failure (404), not an agent error.
    let err = call(agent.addr, Verb::Post, "get_helloworld", &none, timeout)
        .await
        .unwrap_err();
    assert!(
        matches!(&err, ClientError::Transport { message, .. } if message.contains("404")),
        "{err}"
    );
    // Params travel too, URL-encoded on GET.
    let types = AgentSetup::new("").start(&component("test-types"));
    let mut params = serde_json::Map::new();
    params.insert("value".into(), json!("a b&c=d"));
    let reply = call(types.addr, Verb::Get, "echo_string", &params, timeout)
        .await
        .unwrap();
    assert_eq!(reply, json!("a b&c=d"));
    // Nothing listening: a transport failure.
    let closed = std::net::SocketAddr::new(types.addr.ip(), 1);
    let err = call(closed, Verb::Get, "x", &none, timeout)
        .await
        .unwrap_err();
    assert!(matches!(err, ClientError::Transport { .. }), "{err}");
}
