//! System packages the commands need at run time (not to build): installed from Debian's
//! archive when missing, so `cargo xtask up` and `cargo xtask test` work on a fresh machine.
//!
//! The local cloud's nodes need `curl`, which a node's boot script uses to fetch its code
//! from its manager (as the seed's setup fetched the code tarball with wget), and `bash`,
//! which runs it. The tests also need the real web servers the hosting providers write
//! configuration for: `nginx` and Apache (`apache2ctl`), PostgreSQL for the frontend's store,
//! Chromium and ChromeDriver for its dashboard, iproute2 for the netns cloud's namespaces and
//! python3 (with venv) for moto, the EC2 server the ec2 driver is tested against. Package
//! scripts are told not to start the services they install (`RUNLEVEL=1`): the tests start
//! their own instances.

use std::process::Command;

use anyhow::{Result, bail};

use crate::cargo::step;

/// Commands the local cloud's nodes run, with the Debian package providing each.
const NODE_COMMANDS: &[(&str, &str)] = &[("bash", "bash"), ("curl", "curl")];

/// Commands the tests run besides the nodes', with their packages.
const TEST_COMMANDS: &[(&str, &str)] = &[
    ("nginx", "nginx"),
    ("apache2ctl", "apache2"),
    // The frontend's store is tested against a real PostgreSQL server, and its dashboard in a
    // real headless Chromium driven through ChromeDriver.
    ("pg_ctlcluster", "postgresql"),
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
    // The netns cloud (and the ec2 tests' hypervisor) builds nodes with ip: namespaces, veth
    // pairs, a bridge; moto, the EC2 server the ec2 driver is tested against, is a Python venv.
    ("ip", "iproute2"),
    ("python3", "python3-venv"),
];

/// Installs the packages of the node commands that are missing.
pub fn ensure_node_commands() -> Result<()> {
    ensure(NODE_COMMANDS)
}

/// Installs the packages of the node commands and the test commands that are missing.
pub fn ensure_test_commands() -> Result<()> {
    ensure(NODE_COMMANDS)?;
    ensure(TEST_COMMANDS)
}

fn ensure(commands: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = commands
        .iter()
        .filter(|(command, _)| !on_path(command))
        .map(|(_, package)| *package)
        .collect();
    if missing.is_empty() {
        return Ok(());
    }
    if !on_path("apt-get") {
        bail!(
            "missing commands for the local cloud's nodes; install the packages {} (no apt-get here)",
            missing.join(" ")
        );
    }
    // Root installs directly; anyone else through sudo, without a password prompt.
    let root = Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0");
    let apt = |args: &[&str]| {
        let mut cmd = if root {
            Command::new("apt-get")
        } else {
            let mut sudo = Command::new("sudo");
            sudo.args(["-n", "apt-get"]);
            sudo
        };
        // Wait for another installer's lock instead of failing at once.
        cmd.args(["-o", "DPkg::Lock::Timeout=900"])
            .args(args)
            .env("DEBIAN_FRONTEND", "noninteractive")
            .env("RUNLEVEL", "1");
        cmd
    };
    step("updating the package lists", &mut apt(&["update", "-q"]))?;
    let mut install = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    install.args(&missing);
    step(&format!("installing {}", missing.join(" ")), &mut install)
}

fn on_path(command: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(command).is_file()))
}
