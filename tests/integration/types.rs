//! Every WIT type round-trips through JSON, and values that do not fit are refused with the
//! parameter named.

use serde_json::{Value, json};

use crate::support::{AgentSetup, Connection, component};

/// (method, value given, value expected back)
fn round_trips() -> Vec<(&'static str, Value, Value)> {
    let same = |m: &'static str, v: Value| (m, v.clone(), v);
    vec![
        same("echo_bool", json!(true)),
        same("echo_bool", json!(false)),
        same("echo_s8", json!(-128)),
        same("echo_s8", json!(127)),
        same("echo_u8", json!(255)),
        same("echo_s16", json!(-32768)),
        same("echo_u16", json!(65535)),
        same("echo_s32", json!(-2147483648i64)),
        same("echo_u32", json!(4294967295u64)),
        same("echo_s64", json!(i64::MIN)),
        same("echo_u64", json!(u64::MAX)),
        same("echo_f32", json!(1.5)),
        same("echo_f32", json!(0.1)),
        same("echo_f64", json!(-2.25e300)),
        same("echo_f64", json!("NaN")),
        same("echo_f64", json!("Infinity")),
        same("echo_f64", json!("-Infinity")),
        same("echo_char", json!("é")),
        same("echo_char", json!("🦀")),
        same("echo_string", json!("")),
        same("echo_string", json!("line\n\"quoted\" ünïcode 🦀")),
        same("echo_bytes", json!([0, 1, 254, 255])),
        same("echo_bytes", json!([])),
        same("echo_list", json!(["a", "b", ""])),
        same("echo_record", json!({"x": 1, "y": -2, "label": "p"})),
        same("echo_record", json!({"x": 1, "y": -2, "label": null})),
        (
            "echo_record",
            json!({"x": 1, "y": 2}),
            json!({"x": 1, "y": 2, "label": null}),
        ),
        same(
            "echo_nested",
            json!({
                "name": "tri",
                "points": [{"x": 0, "y": 0, "label": null}, {"x": 1, "y": 1, "label": "b"}],
                "kind": "point_cloud",
                "tags": ["read", "exec"]
            }),
        ),
        same("echo_tuple", json!([7, "seven", true])),
        same("echo_variant", json!("none")),
        same("echo_variant", json!({"count": 3})),
        same("echo_variant", json!({"named": "n"})),
        same(
            "echo_variant",
            json!({"pos": {"x": 1, "y": 2, "label": null}}),
        ),
        same("echo_enum", json!("dark_red")),
        ("echo_enum", json!("dark-red"), json!("dark_red")),
        ("echo_enum", json!("darkRed"), json!("dark_red")),
        same("echo_enum", json!("red")),
        same("echo_option", json!(null)),
        same("echo_option", json!(5)),
        same("echo_nested_option", json!(null)),
        same("echo_nested_option", json!({"some": null})),
        same("echo_nested_option", json!({"some": 4})),
        // A result at the top level is the reply itself: ok is the result, err an error.
        ("echo_result", json!({"ok": 9}), json!(9)),
        same("echo_flags", json!([])),
        same("echo_flags", json!(["read", "write", "exec"])),
        same("echo_list_record", json!([{"x": 1, "y": 2, "label": null}])),
    ]
}

#[tokio::test(flavor = "multi_thread")]
async fn every_type_round_trips() {
    let agent = AgentSetup::new("").start(&component("test-types"));
    let mut conn = Connection::open(agent.addr).await;
    for (method, given, expected) in round_trips() {
        let reply = conn.call(method, json!({ "value": given })).await;
        assert_eq!(
            reply["result"], expected,
            "{method}({given}) answered {reply}"
        );
        // Positional params give the same answer.
        let reply = conn.call(method, json!([given])).await;
        assert_eq!(
            reply["result"], expected,
            "{method}([{given}]) answered {reply}"
        );
    }
    let reply = conn
        .call("echo_result", json!({"value": {"err": "bad"}}))
        .await;
    assert_eq!(reply["error"]["code"], -32000);
    assert_eq!(reply["error"]["message"], "bad");
    assert_eq!(
        conn.call("echo_unit_result", json!({"ok": true})).await["result"],
        json!({})
    );
    let reply = conn.call("echo_unit_result", json!({"ok": false})).await;
    assert_eq!(reply["error"]["message"], "failed");
    let reply = conn
        .call("echo_results", json!({"value": [{"ok": 1}, {"err": "e"}]}))
        .await;
    assert_eq!(reply["result"], json!([{"ok": 1}, {"err": "e"}]));
}

#[tokio::test(flavor = "multi_thread")]
async fn values_that_do_not_fit_are_refused_with_the_path() {
    let agent = AgentSetup::new("").start(&component("test-types"));
    let mut conn = Connection::open(agent.addr).await;
    let cases = [
        (
            "echo_u8",
            json!(256),
            "value",
            "an integer value between 0 and 255",
        ),
        (
            "echo_s8",
            json!(-129),
            "value",
            "an integer value between -128 and 127",
        ),
        (
            "echo_u32",
            json!(-1),
            "value",
            "an integer value between 0 and 4294967295",
        ),
        ("echo_u64", json!(1.5), "value", "an integer value"),
        ("echo_s32", json!("1"), "value", "an integer value"),
        ("echo_s32", json!(true), "value", "an integer value"),
        (
            "echo_f32",
            json!(1e300),
            "value",
            "a number value within the range of f32",
        ),
        ("echo_bool", json!(1), "value", "a boolean value"),
        (
            "echo_char",
            json!("ab"),
            "value",
            "a single-character string",
        ),
        ("echo_string", json!(5), "value", "a string value"),
        (
            "echo_bytes",
            json!([1, 300]),
            "value[1]",
            "an integer value between 0 and 255",
        ),
        (
            "echo_record",
            json!({"x": 1, "y": "2"}),
            "value.y",
            "an integer value",
        ),
        (
            "echo_nested",
            json!({"name": "n", "points": [{"x": 1}], "kind": "polygon", "tags": []}),
            "value.points[0].y",
            "an integer value",
        ),
        ("echo_tuple", json!([1, "a"]), "value", "a list of 3 values"),
        (
            "echo_enum",
            json!("purple"),
            "value",
            "one of \"red\", \"green\", \"blue\", \"dark_red\"",
        ),
        (
            "echo_flags",
            json!(["read", "fly"]),
            "value",
            "a list of flags from \"read\", \"write\", \"exec\"",
        ),
        (
            "echo_variant",
            json!({"count": "3"}),
            "value.count",
            "an integer value",
        ),
    ];
    for (method, given, path, expected) in cases {
        let reply = conn.call(method, json!({ "value": given })).await;
        let error = &reply["error"];
        assert_eq!(error["code"], -32602, "{method}({given}): {reply}");
        assert_eq!(error["data"]["param"], path, "{method}({given}): {reply}");
        assert_eq!(
            error["data"]["expected"], expected,
            "{method}({given}): {reply}"
        );
    }
    // An unknown record field is named too.
    let reply = conn
        .call("echo_record", json!({"value": {"x": 1, "y": 2, "z": 3}}))
        .await;
    assert_eq!(reply["error"]["data"]["param"], "value.z");
    assert_eq!(reply["error"]["data"]["problem"], "unexpected");
}
