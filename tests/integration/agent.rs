//! The agent process itself: configuration checks with the seed's messages and exit status,
//! refusing what is not a component, concurrency over its serving threads, and a clean stop
//! that still answers the requests in flight.

use std::collections::{BTreeMap, HashSet};
use std::time::Duration;

use serde_json::json;

use crate::support::{AgentSetup, Connection, component, get};

#[test]
fn a_missing_variable_fails_with_the_seed_message() {
    let setup =
        AgentSetup::raw("[agent]\nETC = /tmp\nVAR_TMP = /tmp\nVAR_CACHE = /tmp\nVAR_RUN =\n");
    let output = setup.run_to_exit(&component("helloworld-agent"));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Missing configuration variable \"LOG_FILE\" in section \"agent\""),
        "{stderr}"
    );
    // An empty value counts as missing, as in the seed.
    assert!(
        stderr.contains("Missing configuration variable \"VAR_RUN\" in section \"agent\""),
        "{stderr}"
    );
}

#[test]
fn a_missing_section_fails_with_the_seed_message() {
    let setup = AgentSetup::raw("[manager]\nTYPE = helloworld\n");
    let output = setup.run_to_exit(&component("helloworld-agent"));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("Missing configuration section \"agent\""),
        "{stderr}"
    );
    assert!(
        stderr.contains("Section \"agent\" should contain variables ['LOG_FILE', 'ETC', 'VAR_TMP', 'VAR_CACHE', 'VAR_RUN']"),
        "{stderr}"
    );
}

#[test]
fn bad_settings_and_files_are_named() {
    let setup = AgentSetup::new("[wasm]\nCALL_TIMEOUT_MS = soon\n");
    let output = setup.run_to_exit(&component("helloworld-agent"));
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("\"CALL_TIMEOUT_MS\"") && stderr.contains("\"soon\""),
        "{stderr}"
    );

    let setup = AgentSetup::new("");
    let not_a_component = setup.dir.path().join("core.wasm");
    std::fs::write(&not_a_component, b"\0asm\x01\0\0\0").unwrap();
    let output = setup.run_to_exit(&not_a_component);
    assert_eq!(output.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("is not a WebAssembly component"),
        "{stderr}"
    );

    let setup = AgentSetup::new("");
    let config = setup.config.clone();
    std::fs::remove_file(&config).unwrap();
    let output = setup.run_to_exit(&component("helloworld-agent"));
    assert_eq!(output.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&output.stderr).contains("Failed to find configuration file"));
}

#[tokio::test(flavor = "multi_thread")]
async fn two_hundred_concurrent_calls_are_all_answered() {
    let agent = AgentSetup::new("").start(&component("test-types"));
    let addr = agent.addr;
    let mut tasks = Vec::new();
    for i in 0..200i64 {
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                let mut conn = Connection::open(addr).await;
                let reply = conn.call("add", json!({"a": i, "b": 1000})).await;
                (i, reply["result"].as_i64())
            } else {
                let reply = tokio::task::spawn_blocking(move || {
                    get(addr, "echo_s64", Some(&json!({"value": i})))
                })
                .await
                .unwrap();
                (i, reply.json()["result"].as_i64().map(|v| v + 1000))
            }
        }));
    }
    let mut seen = HashSet::new();
    for task in tasks {
        let (i, result) = task.await.unwrap();
        assert_eq!(result, Some(i + 1000), "call {i}");
        seen.insert(i);
    }
    assert_eq!(seen.len(), 200);
}

/// The CPU ticks (user and system) of each of `pid`'s serving threads, by thread name.
fn serving_thread_ticks(pid: u32) -> BTreeMap<String, u64> {
    let mut ticks = BTreeMap::new();
    for task in std::fs::read_dir(format!("/proc/{pid}/task")).expect("read /proc tasks") {
        let task = task.expect("task entry").path();
        let Ok(name) = std::fs::read_to_string(task.join("comm")) else {
            continue;
        };
        let name = name.trim().to_string();
        if !name.starts_with("paasm-serve-") {
            continue;
        }
        let stat = std::fs::read_to_string(task.join("stat")).expect("read task stat");
        // The fields after the parenthesised name: state is the 3rd, utime and stime the
        // 14th and 15th.
        let fields: Vec<&str> = stat
            .rsplit_once(')')
            .expect("stat has a name")
            .1
            .split_whitespace()
            .collect();
        let used = fields[11].parse::<u64>().unwrap() + fields[12].parse::<u64>().unwrap();
        ticks.insert(name, used);
    }
    ticks
}

#[tokio::test(flavor = "multi_thread")]
async fn connections_are_spread_over_the_serving_threads() {
    let mut setup = AgentSetup::new("");
    setup.extra_args = vec!["--threads".into(), "3".into()];
    let agent = setup.start(&component("test-types"));
    let addr = agent.addr;
    let mut tasks = Vec::new();
    for c in 0..48i64 {
        tasks.push(tokio::spawn(async move {
            let mut conn = Connection::open(addr).await;
            for i in 0..250i64 {
                let reply = conn.call("add", json!({"a": c, "b": i})).await;
                assert_eq!(reply["result"].as_i64(), Some(c + i), "{reply}");
            }
        }));
    }
    for task in tasks {
        task.await.unwrap();
    }
    let ticks = serving_thread_ticks(agent.pid());
    let names: Vec<&str> = ticks.keys().map(String::as_str).collect();
    assert_eq!(names, ["paasm-serve-0", "paasm-serve-1", "paasm-serve-2"]);
    // Connections go to the thread with the fewest, so each served a third of the calls.
    assert!(
        ticks.values().all(|&t| t > 0),
        "idle serving thread: {ticks:?}"
    );
    let (status, stderr) = agent.stop();
    assert!(status.success(), "{status:?}: {stderr}");
}

#[test]
fn a_thread_count_of_zero_is_refused() {
    for bad in ["0", "many"] {
        let mut setup = AgentSetup::new("");
        setup.extra_args = vec!["--threads".into(), bad.into()];
        let output = setup.run_to_exit(&component("helloworld-agent"));
        assert_eq!(output.status.code(), Some(2));
        let stderr = String::from_utf8_lossy(&output.stderr);
        assert!(
            stderr.contains(&format!("invalid value '{bad}' for '--threads <N>'")),
            "{stderr}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn a_request_in_flight_at_sigterm_gets_its_reply() {
    let agent =
        AgentSetup::new("[wasm]\nCALL_TIMEOUT_MS = 1500\n").start(&component("test-faults"));
    let addr = agent.addr;
    let spinning = tokio::spawn(async move {
        let mut conn = Connection::open(addr).await;
        conn.post(&json!({"jsonrpc": "2.0", "method": "spin", "params": {}, "id": 7}))
            .await
    });
    tokio::time::sleep(Duration::from_millis(300)).await;
    let (status, stderr) = tokio::task::spawn_blocking(move || agent.stop())
        .await
        .unwrap();
    assert!(status.success(), "{status:?}: {stderr}");
    let (code, reply) = spinning.await.unwrap();
    assert_eq!(code, 200, "{reply}");
    assert_eq!(reply["id"], 7, "{reply}");
    let message = reply["error"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("deadline"), "{reply}");
}

#[test]
fn the_agent_stops_cleanly_on_sigterm() {
    let agent = AgentSetup::new("").start(&component("helloworld-agent"));
    assert_eq!(get(agent.addr, "check_agent_process", None).status, 200);
    let log_before = agent.setup.log();
    assert!(
        log_before.contains("helloworld agent loaded"),
        "on-startup ran: {log_before}"
    );
    let (status, stderr) = agent.stop();
    assert!(status.success(), "{status:?}: {stderr}");
}

#[test]
fn components_are_compiled_once_and_cached() {
    let mut setup = AgentSetup::new("");
    setup.cache_dir = setup.dir.path().join("component-cache");
    let mut agent = setup.start(&component("helloworld-agent"));
    let cached: Vec<_> = std::fs::read_dir(&agent.setup.cache_dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    assert!(cached[0].ends_with(".cwasm"), "{cached:?}");
    assert_eq!(agent.setup.log().matches("compiled component").count(), 1);
    agent.restart(&component("helloworld-agent"));
    assert_eq!(get(agent.addr, "check_agent_process", None).status, 200);
    assert_eq!(
        agent.setup.log().matches("compiled component").count(),
        1,
        "the second start loads the precompiled artifact"
    );
}

#[test]
fn without_address_space_for_the_pool_the_agent_falls_back() {
    let mut setup = AgentSetup::new("");
    // Far too little for a pool of 1000 instance slots, enough for on-demand allocation.
    setup.address_space_kib = Some(64 << 20);
    let agent = setup.start(&component("helloworld-agent"));
    let reply = crate::support::post(agent.addr, &json!({"method": "startup", "id": 1}));
    assert_eq!(reply.json()["result"], json!({}));
    let reply = get(agent.addr, "get_helloworld", None);
    assert_eq!(reply.json()["result"], json!({"result": "helloworld-test"}));
    let log = agent.setup.log();
    assert!(
        log.contains("falling back to on-demand allocation"),
        "{log}"
    );
    assert!(log.contains("pooling=false"), "{log}");
}

#[test]
fn the_helloworld_agent_script_boots_as_the_seed_describes() {
    let config_dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../config");
    // What a manager serves under /code/, here as files (curl fetches file:// URLs too).
    let node = tempfile::tempdir().unwrap();
    let stub = node.path().join("paasm-stub");
    std::fs::write(&stub, "#!/bin/sh\necho \"$@\" > \"$NODE_DIR/started\"\n").unwrap();
    std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let source = tempfile::tempdir().unwrap();
    std::fs::create_dir(source.path().join("code")).unwrap();
    std::fs::write(source.path().join("code/agent.wasm"), b"component bytes").unwrap();
    std::fs::write(
        source.path().join("code/paasm-path"),
        format!("{}\n", stub.display()),
    )
    .unwrap();
    let output = std::process::Command::new(crate::support::paasm_bin())
        .args([
            "context",
            "--service",
            "helloworld",
            "--role",
            "agent",
            "--cloud",
            "local",
        ])
        .args(["--var", "STRING=helloworld", "--var", "AGENT_PORT=5555"])
        .arg("--var")
        .arg(format!("SOURCE=file://{}", source.path().display()))
        .arg("--config-dir")
        .arg(&config_dir)
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let script = String::from_utf8(output.stdout).unwrap();
    // The service annex, with the manager's replacement applied, inside the config heredoc.
    let heredoc = script
        .split("cat <<EOF > $ROOT_DIR/config.cfg\n")
        .nth(1)
        .expect("config heredoc");
    let config = heredoc.split("\nEOF\n").next().unwrap();
    assert!(config.contains("[agent]"), "{config}");
    assert!(
        config.contains("STRING_TO_GENERATE = helloworld"),
        "{config}"
    );
    // Unknown names are left for bash at boot.
    assert!(config.contains("LOG_FILE = $LOG_FILE"), "{config}");

    // Run it the way a node boots, with `paasm` stubbed out, and check the configuration the
    // agent would start with passes the agent's own checks.
    let status = std::process::Command::new("bash")
        .arg("-c")
        .arg(&script)
        .env("NODE_DIR", node.path())
        .env("NODE_IP", "127.0.0.9")
        .status()
        .unwrap();
    assert!(status.success());
    assert_eq!(
        std::fs::read(node.path().join("paasm/agent.wasm")).unwrap(),
        b"component bytes",
        "the component is fetched from SOURCE"
    );
    let written = std::fs::read_to_string(node.path().join("config.cfg")).unwrap();
    let root = node.path().display().to_string();
    assert!(
        written.contains(&format!("LOG_FILE = {root}/var/log/paasm-agent.log")),
        "{written}"
    );
    assert!(written.contains("MY_IP = 127.0.0.9"), "{written}");
    // The stub runs in the background: wait until it has written its line, not just opened
    // the file.
    for _ in 0..500 {
        let written = std::fs::read_to_string(node.path().join("started")).unwrap_or_default();
        if written.ends_with('\n') {
            break;
        }
        std::thread::sleep(std::time::Duration::from_millis(20));
    }
    let started = std::fs::read_to_string(node.path().join("started")).unwrap();
    assert!(
        started.contains("agent --config") && started.contains("127.0.0.9:5555"),
        "{started}"
    );

    // A service start script replaces the default one.
    let tree = tempfile::tempdir().unwrap();
    let copy = std::process::Command::new("cp")
        .arg("-r")
        .arg(&config_dir)
        .arg(tree.path().join("config"))
        .status()
        .unwrap();
    assert!(copy.success());
    std::fs::write(
        tree.path()
            .join("config/scripts/agent/helloworld-agent-start"),
        "echo helloworld starts its own way\n",
    )
    .unwrap();
    let output = std::process::Command::new(crate::support::paasm_bin())
        .args(["context", "--service", "helloworld", "--role", "agent"])
        .arg("--config-dir")
        .arg(tree.path().join("config"))
        .output()
        .unwrap();
    let script = String::from_utf8(output.stdout).unwrap();
    assert!(
        script.ends_with("EOF\necho helloworld starts its own way\n"),
        "{script}"
    );
    assert!(!script.contains("--component"), "{script}");
}
#[test]
fn an_installed_packages_own_annex_and_start_script_are_what_its_nodes_run() {
    let config_dir = crate::support::config_tree();
    let services = tempfile::tempdir().unwrap();
    let package = services.path().join("greeter");
    std::fs::create_dir(&package).unwrap();
    std::fs::write(
        package.join("service.toml"),
        "name = \"greeter\"\nversion = \"1.0\"\n\
         [manager]\ncomponent = \"m.wasm\"\nconfig = \"manager.cfg\"\n\
         [agent]\ncomponent = \"a.wasm\"\nconfig = \"agent.cfg\"\nstart = \"agent-start\"\n",
    )
    .unwrap();
    for (file, text) in [
        ("m.wasm", ""),
        ("a.wasm", ""),
        ("manager.cfg", "GREETER_MANAGER = yes\n"),
        (
            "agent.cfg",
            "STRING_TO_GENERATE = $STRING, from the package\n",
        ),
        ("agent-start", "echo the greeter starts its own way\n"),
    ] {
        std::fs::write(package.join(file), text).unwrap();
    }
    let context = |role: &str| {
        let output = std::process::Command::new(crate::support::paasm_bin())
            .args(["context", "--service", "greeter", "--role", role])
            .args(["--var", "STRING=hi"])
            .arg("--config-dir")
            .arg(&config_dir)
            .arg("--services-dir")
            .arg(services.path())
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "{}",
            String::from_utf8_lossy(&output.stderr)
        );
        String::from_utf8(output.stdout).unwrap()
    };
    let agent = context("agent");
    assert!(
        agent.contains("STRING_TO_GENERATE = hi, from the package"),
        "{agent}"
    );
    assert!(
        agent.ends_with("EOF\necho the greeter starts its own way\n"),
        "{agent}"
    );
    let manager = context("manager");
    assert!(manager.contains("GREETER_MANAGER = yes"), "{manager}");
}

/// The benchmark's floor (`guests/bench-empty`: no standard library, no imports, one core
/// module) is served like any agent and gives the helloworld reply under both instance
/// policies, and a reused instance keeps answering for all of its calls: its allocator starts
/// over once a call's reply has been freed, else 8000 replies would not fit its 64 KiB heap.
#[tokio::test(flavor = "multi_thread")]
async fn the_empty_benchmark_component_answers_under_both_policies() {
    for (policy, calls) in [("fresh", 1000), ("reuse", 8000)] {
        let setup = AgentSetup::new(&format!(
            "[wasm]\nINSTANCES = {policy}\nREUSE_MAX_CALLS = 100000\n"
        ));
        let agent = setup.start(&component("bench-empty"));
        let mut conn = Connection::open(agent.addr).await;
        let reply = conn.call("startup", json!({})).await;
        assert_eq!(reply["result"], json!({}), "{policy}: {reply}");
        for _ in 0..calls {
            let reply = conn.call("get_helloworld", json!({})).await;
            assert_eq!(
                reply["result"],
                json!({"result": "helloworld"}),
                "{policy}: {reply}"
            );
        }
    }
}

/// The bench's floor (`host/examples/bare_host.rs`): a fresh instance of the empty component
/// per request answers every call, and a component it cannot link is refused with its name.
#[tokio::test]
async fn the_bare_benchmark_host_answers_from_fresh_instances() {
    let bare = crate::support::paasm_bin()
        .with_file_name("examples")
        .join("bare_host");
    let empty = component("bench-empty");
    let mut server = crate::support::KillOnDrop(
        std::process::Command::new(&bare)
            .arg(&empty)
            .stdout(std::process::Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot start {}: {e}", bare.display())),
    );
    let line = crate::support::first_line(&mut server.0, std::time::Duration::from_secs(120));
    let addr = line
        .as_deref()
        .and_then(|l| l.strip_prefix("bare-host listening on http://"))
        .unwrap_or_else(|| panic!("unexpected first line {line:?}"))
        .parse()
        .expect("listen address");
    let mut conn = Connection::open(addr).await;
    for id in 0..500 {
        let (status, reply) = conn
            .post(&json!({"jsonrpc": "2.0", "method": "get_helloworld", "id": id}))
            .await;
        assert_eq!(status, 200, "{reply}");
        assert_eq!(reply["result"], json!({"result": "helloworld"}), "{reply}");
        assert_eq!(reply["id"], json!(id), "{reply}");
    }
    drop(server);

    let output = std::process::Command::new(&bare)
        .arg(component("helloworld-agent"))
        .output()
        .expect("run bare_host");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("cannot be linked without imports"),
        "{stderr}"
    );
}
