//! `cargo xtask up`: build everything and run the frontend on the local cloud, with the bundled
//! service packages installed (through `paasm service install`, which checks them) and a first
//! user whose credentials are printed. When the frontend stops (Ctrl-C), the managers and
//! agent nodes its services left running are stopped too.

use std::io::Write;
use std::net::SocketAddr;
use std::path::Path;
use std::process::{Command, Stdio};

use anyhow::{Context, Result, bail};

use crate::cargo;
use crate::guests;
use crate::paths::Paths;
use crate::process::{self, Announcing};

/// What `paasm frontend` prints (followed by `http://ADDR`) once it accepts connections.
const READY_PREFIX: &str = "paasm frontend listening on ";
/// The first user `up` creates.
const USER: &str = "admin";

/// Runs the frontend until it exits and returns its exit code.
pub fn run(paths: &Paths, listen: SocketAddr) -> Result<i32> {
    guests::build(paths)?;
    crate::system::ensure_node_commands()?;
    cargo::build_workspace(paths)?;

    // Every `up` starts afresh: the previous run's nodes were stopped when it ended.
    let up = paths.target.join("up");
    if up.exists() {
        stop_nodes(&up);
        std::fs::remove_dir_all(&up).with_context(|| format!("cannot clear {}", up.display()))?;
    }
    let services = up.join("services");
    for package in std::fs::read_dir(paths.services())
        .with_context(|| format!("cannot read {}", paths.services().display()))?
    {
        let package = package?.path();
        let mut install = Command::new(paths.paasm_bin());
        install
            .args(["service", "install"])
            .arg(&package)
            .arg("--services-dir")
            .arg(&services);
        cargo::step(&format!("installing {}", package.display()), &mut install)?;
    }
    let var = up.join("frontend");
    // Managers listen on port 80 of their own loopback address; without root, on 8000.
    // SAFETY: geteuid has no preconditions.
    let manager_port = if unsafe { libc::geteuid() } == 0 {
        80
    } else {
        8000
    };
    let mut cmd = Command::new(paths.paasm_bin());
    cmd.arg("frontend")
        .arg("--listen")
        .arg(listen.to_string())
        .arg("--var")
        .arg(&var)
        .arg("--config-dir")
        .arg(paths.config_tree())
        .arg("--services-dir")
        .arg(&services)
        .args(["--manager-port", &manager_port.to_string()]);
    eprintln!("==> starting the frontend: `{}`", cargo::describe(&cmd));
    let announcing = Announcing::spawn(&mut cmd, READY_PREFIX, true)?;
    // From here on Ctrl-C is the frontend's business: it gets the terminal's SIGINT too, and
    // we report how it ended.
    process::ignore_sigint();
    let (mut child, addr) = announcing.ready(None)?;

    let password = new_password()?;
    let url = format!("http://{addr}");
    let credentials = up.join("credentials.toml");
    let mut create = Command::new(paths.paasm_bin());
    create
        .args([
            "user",
            "create",
            USER,
            "--password-stdin",
            "--frontend",
            &url,
        ])
        .env("PAASM_CREDENTIALS", &credentials)
        .stdin(Stdio::piped())
        .stdout(Stdio::null());
    let mut creating = create.spawn().context("cannot run paasm user create")?;
    creating
        .stdin
        .take()
        .context("no stdin")?
        .write_all(format!("{password}\n").as_bytes())?;
    if !creating.wait()?.success() {
        let _ = child.kill();
        bail!("cannot create the first user");
    }

    print_welcome(&paths.paasm_bin(), &url, &password, &credentials, &var);
    let status = child.wait().context("cannot wait for the frontend")?;
    eprintln!("frontend exited ({status})");
    let stopped = stop_nodes(&var);
    if stopped > 0 {
        eprintln!("stopped {stopped} node(s) the services left running");
    }
    Ok(process::exit_code(status))
}

/// A random password for the first user.
fn new_password() -> Result<String> {
    let mut bytes = [0u8; 12];
    std::fs::File::open("/dev/urandom")
        .and_then(|mut f| std::io::Read::read_exact(&mut f, &mut bytes))
        .context("cannot read /dev/urandom")?;
    let alphabet = b"abcdefghijkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    Ok(bytes
        .iter()
        .map(|b| alphabet[*b as usize % alphabet.len()] as char)
        .collect())
}

fn print_welcome(bin: &Path, url: &str, password: &str, credentials: &Path, var: &Path) {
    let p = bin.display();
    let env = format!("PAASM_CREDENTIALS={}", credentials.display());
    println!();
    println!("paasm frontend is up at {url}/ (local cloud)");
    println!("  dashboard: {url}/   user: {USER}   password: {password}");
    println!(
        "  its files (database, log, manager nodes): {}",
        var.display()
    );
    println!();
    println!(
        "# or from the command line (the token is kept in the credentials file, not the password)"
    );
    println!("export {env}");
    println!("echo '{password}' | {p} login {USER} --password-stdin --frontend {url}");
    println!("{p} service catalogue");
    println!("{p} service create helloworld          # starts its manager; waits until INIT");
    println!("{p} service start 1                    # PROLOGUE -> RUNNING");
    println!(
        "{p} service add-nodes 1 2              # ADAPTING -> RUNNING once both agents answer"
    );
    println!("{p} call 1 get_helloworld");
    println!("{p} service nodes 1");
    println!("{p} service logs 1");
    println!("{p} user credit                        # credit and the ledger");
    println!("{p} service terminate 1");
    println!();
    println!("press Ctrl-C to stop");
}

/// Kills the process group of every node recorded anywhere under `dir` (`.../node.json`):
/// the frontend's manager nodes and the agent nodes of their services.
pub fn stop_nodes(dir: &Path) -> usize {
    #[derive(serde::Deserialize)]
    struct Record {
        pgid: i32,
    }
    let mut stopped = 0;
    for entry in std::fs::read_dir(dir).into_iter().flatten().flatten() {
        let path = entry.path();
        if !entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        if let Ok(bytes) = std::fs::read(path.join("node.json"))
            && let Ok(record) = serde_json::from_slice::<Record>(&bytes)
        {
            // SAFETY: killpg only sends a signal; a group that is gone yields an error.
            if record.pgid > 1 && unsafe { libc::killpg(record.pgid, libc::SIGTERM) } == 0 {
                stopped += 1;
            }
            let _ = std::fs::remove_file(path.join("node.json"));
        }
        stopped += stop_nodes(&path);
    }
    stopped
}
