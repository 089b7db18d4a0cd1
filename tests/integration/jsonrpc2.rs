//! JSON-RPC 2.0 on the same endpoint: kept-alive connections, error objects, batches,
//! notifications, named and positional params, and the OpenRPC document.

use serde_json::{Value, json};

use crate::support::{AgentSetup, Connection, component};

#[tokio::test(flavor = "multi_thread")]
async fn helloworld_over_jsonrpc2_keeps_the_connection() {
    let agent = AgentSetup::new("").start(&component("helloworld-agent"));
    let mut conn = Connection::open(agent.addr).await;

    let reply = conn.call("get_helloworld", json!({})).await;
    assert_eq!(reply["error"]["code"], -32000);
    assert_eq!(
        reply["error"]["message"],
        "ERROR: Wrong state to get_helloworld"
    );
    assert_eq!(reply["jsonrpc"], "2.0");

    // A POST-namespace method, then a GET-namespace one, on the same connection: in JSON-RPC
    // 2.0 every method is callable by POST.
    assert_eq!(
        conn.call("startup", json!({})).await,
        json!({"jsonrpc": "2.0", "result": {}, "id": 1})
    );
    let reply = conn.call("get_helloworld", json!([])).await;
    assert_eq!(reply["result"], json!({"result": "helloworld-test"}));
    assert!(conn.is_open(), "JSON-RPC 2.0 connections are kept alive");
    let reply = conn.call("check_agent_process", Value::Null).await;
    assert_eq!(reply["result"], json!({}));
}

#[tokio::test(flavor = "multi_thread")]
async fn errors_batches_and_notifications() {
    let agent = AgentSetup::new("").start(&component("test-types"));
    let mut conn = Connection::open(agent.addr).await;

    let reply = conn.call("no_such_method", json!({})).await;
    assert_eq!(reply["error"]["code"], -32601);

    let reply = conn.call("echo_u8", json!({"value": -1})).await;
    assert_eq!(reply["error"]["code"], -32602);
    assert_eq!(reply["error"]["data"]["param"], "value");
    assert_eq!(
        reply["error"]["data"]["expected"],
        "an integer value between 0 and 255"
    );

    let reply = conn
        .call("describe", json!({"name": "x", "count": 1, "bogus": true}))
        .await;
    assert_eq!(reply["error"]["code"], -32602);
    assert_eq!(reply["error"]["data"]["param"], "bogus");
    assert_eq!(reply["error"]["data"]["problem"], "unexpected");

    let reply = conn.call("describe", json!({"count": 1})).await;
    assert_eq!(reply["error"]["data"]["param"], "name");
    assert_eq!(reply["error"]["data"]["problem"], "missing");

    // Positional params; a missing trailing option is none.
    let reply = conn.call("describe", json!(["x", 2])).await;
    assert_eq!(reply["result"], "x:2:None");
    let reply = conn.call("describe", json!(["x", 2, true, 4])).await;
    assert_eq!(reply["error"]["code"], -32602);

    // Invalid requests.
    let (_, reply) = conn.post(&json!({"jsonrpc": "2.0", "id": 3})).await;
    assert_eq!(reply["error"]["code"], -32600);
    assert_eq!(reply["id"], 3);
    let (_, reply) = conn
        .post(&json!({"jsonrpc": "2.0", "method": 5, "id": 4}))
        .await;
    assert_eq!(reply["error"]["code"], -32600);
    let (_, reply) = conn
        .post(&json!({"jsonrpc": "2.0", "method": "add", "params": 5, "id": 4}))
        .await;
    assert_eq!(reply["error"]["code"], -32602);
    let (_, reply) = conn.post(&json!([])).await;
    assert_eq!(reply["error"]["code"], -32600);

    // A batch: replies for requests, none for the notification, errors in place.
    let (status, reply) = conn
        .post(&json!([
            {"jsonrpc": "2.0", "method": "add", "params": {"a": 1, "b": 2}, "id": "a"},
            {"jsonrpc": "2.0", "method": "add", "params": {"a": 1, "b": 2}},
            {"jsonrpc": "2.0", "method": "missing", "id": "b"},
            7
        ]))
        .await;
    assert_eq!(status, 200);
    let replies = reply.as_array().expect("batch reply");
    assert_eq!(replies.len(), 3, "{reply}");
    let by_id = |id: &str| replies.iter().find(|r| r["id"] == id).cloned().unwrap();
    assert_eq!(by_id("a")["result"], 3);
    assert_eq!(by_id("b")["error"]["code"], -32601);
    assert!(
        replies
            .iter()
            .any(|r| r["error"]["code"] == -32600 && r["id"].is_null())
    );

    // Only notifications: no body at all.
    let (status, reply) = conn
        .post(&json!({"jsonrpc": "2.0", "method": "add", "params": {"a": 1, "b": 2}}))
        .await;
    assert_eq!((status, reply), (204, Value::Null));

    // A parse error on a body that says it is JSON-RPC.
    let body = "{\"jsonrpc\": \"2.0\", ";
    let request = format!(
        "POST / HTTP/1.1\r\nHost: x\r\nConnection: close\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    let reply = crate::support::exchange(agent.addr, request.as_bytes());
    assert_eq!(reply.json()["error"]["code"], -32700);

    assert!(conn.is_open());
}

#[tokio::test(flavor = "multi_thread")]
async fn rpc_discover_describes_the_methods() {
    let agent = AgentSetup::new("").start(&component("test-types"));
    let mut conn = Connection::open(agent.addr).await;
    let doc = conn.call("rpc.discover", json!({})).await["result"].clone();
    assert_eq!(doc["openrpc"], "1.3.2");
    let methods = doc["methods"].as_array().unwrap();
    let find = |name: &str| methods.iter().find(|m| m["name"] == name).cloned().unwrap();
    let echo_u8 = find("echo_u8");
    assert_eq!(echo_u8["x-verb"], "GET");
    assert_eq!(echo_u8["params"][0]["name"], "value");
    assert_eq!(echo_u8["params"][0]["schema"]["maximum"], 255.0);
    assert_eq!(find("add")["x-verb"], "POST");
    assert_eq!(find("upload")["x-verb"], "UPLOAD");
    assert_eq!(find("check_agent_process")["x-verb"], "GET");
    let describe = find("describe");
    assert_eq!(describe["params"][2]["required"], false);
}
