//! System packages the commands need at run time (not to build): installed from Debian's
//! archive when missing, so `cargo xtask up` and `cargo xtask test` work on a fresh machine.
//!
//! The local cloud's nodes need `curl`, which a node's boot script uses to fetch its code
//! from its manager (as the seed's setup fetched the code tarball with wget), and `bash`,
//! which runs it. The tests also need the real web servers the hosting providers write
//! configuration for: `nginx`, Apache (`apache2ctl`) and `lighttpd`; PostgreSQL for the
//! frontend's store, Chromium and ChromeDriver for its dashboard, an OCI registry for
//! published packages, iproute2 for the netns cloud's namespaces and python3 (with venv) for
//! moto, the EC2 server the ec2 driver is tested against. Package scripts are told not to
//! start the services they install (`RUNLEVEL=1`): the tests start their own instances.
//!
//! Guests written in C build with Debian's `clang`, `wasi-libc`, `lld` and the compiler runtime
//! for wasm32 ([`c_packages`]), installed the same way by `build-guests` (see `c.rs`).

use std::process::Command;

use anyhow::{Result, bail};

use crate::cargo::step;

/// Commands the local cloud's nodes run, with the Debian package providing each.
const NODE_COMMANDS: &[(&str, &str)] = &[("bash", "bash"), ("curl", "curl")];

/// Commands the tests run besides the nodes', with their packages.
const TEST_COMMANDS: &[(&str, &str)] = &[
    ("nginx", "nginx"),
    ("apache2ctl", "apache2"),
    ("lighttpd", "lighttpd"),
    // The frontend's store is tested against a real PostgreSQL server, and its dashboard in a
    // real headless Chromium driven through ChromeDriver.
    ("pg_ctlcluster", "postgresql"),
    ("chromium", "chromium"),
    ("chromedriver", "chromium-driver"),
    // Packages are published to and installed from a real OCI registry (the CNCF
    // distribution registry); its htpasswd file is written with Apache's `htpasswd -B`.
    ("docker-registry", "docker-registry"),
    ("htpasswd", "apache2-utils"),
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

/// The Debian packages a C guest builds with besides `clang`: the C library, the linker
/// (`wasm-ld`) and the compiler runtime, the runtime's named for clang's major version.
pub struct CPackages {
    pub libc: &'static str,
    pub linker: String,
    pub runtime: String,
}

/// [`CPackages`] for clang `clang_major`.
pub fn c_packages(clang_major: &str) -> CPackages {
    CPackages {
        libc: "wasi-libc",
        linker: format!("lld-{clang_major}"),
        runtime: format!("libclang-rt-{clang_major}-dev-wasm32"),
    }
}

fn ensure(commands: &[(&str, &str)]) -> Result<()> {
    let missing: Vec<&str> = commands
        .iter()
        .filter(|(command, _)| !on_path(command))
        .map(|(_, package)| *package)
        .collect();
    install(&missing)
}

/// Installs Debian packages with apt-get (through `sudo -n` unless root); nothing when `missing`
/// is empty.
pub fn install(missing: &[&str]) -> Result<()> {
    if missing.is_empty() {
        return Ok(());
    }
    if !on_path("apt-get") {
        bail!(
            "missing packages {}: install them (no apt-get here)",
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
    let mut cmd = apt(&["install", "-y", "-q", "--no-install-recommends"]);
    cmd.args(missing);
    step(&format!("installing {}", missing.join(" ")), &mut cmd)
}

/// Whether `command` is an executable file in a `PATH` directory.
pub fn on_path(command: &str) -> bool {
    std::env::var_os("PATH")
        .is_some_and(|path| std::env::split_paths(&path).any(|dir| dir.join(command).is_file()))
}
