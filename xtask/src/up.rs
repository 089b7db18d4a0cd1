//! `cargo xtask up`: build everything and run a local agent serving the helloworld component,
//! with ready-to-paste requests for both wire dialects.

use std::net::SocketAddr;

use anyhow::{Context, Result};

use crate::agent::{self, Instances};
use crate::cargo;
use crate::guests;
use crate::paths::Paths;
use crate::process::{self, Announcing};

/// Runs the agent until it exits and returns its exit code.
pub fn run(paths: &Paths, listen: SocketAddr, instances: Instances) -> Result<i32> {
    let components = guests::build(paths)?;
    let component = guests::find(&components, agent::HELLOWORLD)?;
    cargo::build_workspace(paths)?;

    let dir = paths.target.join("up");
    let config = agent::write_config(&dir, instances)?;
    let mut cmd = agent::command(&paths.paasm_bin(), &config, &component, listen);
    eprintln!("==> starting the agent: `{}`", cargo::describe(&cmd));
    let announcing = Announcing::spawn(&mut cmd, agent::READY_PREFIX, true)?;
    // From here on Ctrl-C is the agent's business: it gets the terminal's SIGINT too, and we
    // report how it ended.
    process::ignore_sigint();
    let (mut child, addr) = announcing.ready(None)?;

    print_welcome(addr, &config, instances);
    let status = child.wait().context("cannot wait for the agent")?;
    eprintln!("agent exited ({status})");
    Ok(process::exit_code(status))
}

fn print_welcome(addr: SocketAddr, config: &std::path::Path, instances: Instances) {
    let url = format!("http://{addr}/");
    println!();
    println!("paasm agent is up at {url} (helloworld-agent, instances: {instances})");
    println!("config: {}", config.display());
    println!();
    println!("# ConPaaS dialect: start the agent, then ask it for its string");
    println!(
        "curl -s -X POST -H 'Content-Type: application/json' \
         -d '{{\"method\":\"startup\",\"params\":{{}},\"id\":1}}' {url}"
    );
    println!("curl -s -H 'Content-Type: application/json' '{url}?method=get_helloworld&id=1'");
    println!();
    println!("# JSON-RPC 2.0");
    println!(
        "curl -s -H 'Content-Type: application/json' \
         -d '{{\"jsonrpc\":\"2.0\",\"method\":\"get_helloworld\",\"id\":1}}' {url}"
    );
    println!();
    println!("press Ctrl-C to stop");
}
