//! `cargo xtask up`: build everything and run a manager for the helloworld service on the local
//! cloud, with ready-to-paste requests that walk through the service's whole life. When the
//! manager stops (Ctrl-C), the agent nodes it left running are stopped too.

use std::net::SocketAddr;
use std::path::Path;
use std::process::Command;

use anyhow::{Context, Result};

use crate::cargo;
use crate::guests;
use crate::paths::Paths;
use crate::process::{self, Announcing};

/// What `paasm manager` prints (followed by `http://ADDR`) once it accepts connections.
const READY_PREFIX: &str = "paasm manager listening on ";

/// Runs the manager until it exits and returns its exit code.
pub fn run(paths: &Paths, listen: SocketAddr) -> Result<i32> {
    guests::build(paths)?;
    crate::system::ensure_node_commands()?;
    cargo::build_workspace(paths)?;

    // Every `up` starts a fresh service: the previous one's nodes were stopped when it ended.
    let var = paths.target.join("up").join("helloworld");
    if var.exists() {
        std::fs::remove_dir_all(&var).with_context(|| format!("cannot clear {}", var.display()))?;
    }
    let mut cmd = Command::new(paths.paasm_bin());
    cmd.args(["manager", "--service", "helloworld", "--cloud", "local"])
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--var")
        .arg(&var)
        .arg("--config-dir")
        .arg(paths.config_tree())
        .arg("--services-dir")
        .arg(paths.services());
    eprintln!("==> starting the manager: `{}`", cargo::describe(&cmd));
    let announcing = Announcing::spawn(&mut cmd, READY_PREFIX, true)?;
    // From here on Ctrl-C is the manager's business: it gets the terminal's SIGINT too, and we
    // report how it ended.
    process::ignore_sigint();
    let (mut child, addr) = announcing.ready(None)?;

    print_welcome(addr, &var);
    let status = child.wait().context("cannot wait for the manager")?;
    eprintln!("manager exited ({status})");
    let stopped = stop_nodes(&var.join("var/cache/paasm-manager/nodes"));
    if stopped > 0 {
        eprintln!("stopped {stopped} agent node(s) the manager left running");
    }
    Ok(process::exit_code(status))
}

fn print_welcome(addr: SocketAddr, var: &Path) {
    let url = format!("http://{addr}/");
    let post = |method: &str, params: &str| {
        format!(
            "curl -s -H 'Content-Type: application/json' -d '{{\"method\":\"{method}\",\"params\":{params},\"id\":1}}' {url}"
        )
    };
    let get = |method: &str| {
        format!("curl -s -H 'Content-Type: application/json' '{url}?method={method}&id=1'")
    };
    println!();
    println!("paasm manager for helloworld is up at {url} (local cloud)");
    println!(
        "its files (configuration, database, log, nodes): {}",
        var.display()
    );
    println!();
    println!("# start the service, then add two agent nodes (each a process tree on 127.0.0.x)");
    println!("{}", post("startup", "{}"));
    println!("{}", post("add_nodes", "{\"count\":2}"));
    println!("# the state goes ADAPTING -> RUNNING once both agents answer");
    println!("{}", get("get_service_info"));
    println!("{}", get("list_nodes"));
    println!("# ask every agent for its string (the manager logs each answer: get_log)");
    println!("{}", get("get_helloworld"));
    println!("{}", post("remove_nodes", "{\"count\":1}"));
    println!("{}", post("shutdown", "{}"));
    println!("{}", get("get_service_history"));
    println!();
    println!("# or JSON-RPC 2.0 on the same port");
    println!(
        "curl -s -H 'Content-Type: application/json' -d '{{\"jsonrpc\":\"2.0\",\"method\":\"get_service_info\",\"id\":1}}' {url}"
    );
    println!();
    println!("press Ctrl-C to stop");
}

/// Kills the process group of every node recorded under `nodes` (`<cloud>/<vmid>/node.json`).
pub fn stop_nodes(nodes: &Path) -> usize {
    #[derive(serde::Deserialize)]
    struct Record {
        pgid: i32,
    }
    let mut stopped = 0;
    let clouds = std::fs::read_dir(nodes).into_iter().flatten().flatten();
    for cloud in clouds {
        for node in std::fs::read_dir(cloud.path())
            .into_iter()
            .flatten()
            .flatten()
        {
            let Ok(bytes) = std::fs::read(node.path().join("node.json")) else {
                continue;
            };
            let Ok(record) = serde_json::from_slice::<Record>(&bytes) else {
                continue;
            };
            // SAFETY: killpg only sends a signal; a group that is gone yields an error.
            if record.pgid > 1 && unsafe { libc::killpg(record.pgid, libc::SIGTERM) } == 0 {
                stopped += 1;
            }
            let _ = std::fs::remove_file(node.path().join("node.json"));
        }
    }
    stopped
}
