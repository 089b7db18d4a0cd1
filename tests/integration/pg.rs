//! A throwaway PostgreSQL server for tests: `initdb` in a temporary directory, `postgres` on a
//! free loopback port, stopped (and its files removed) on drop. PostgreSQL refuses to run as
//! root, so under root (as in CI) both run as the `postgres` user that Debian's package
//! creates. `cargo xtask test` installs the package on a fresh machine.

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::managers::free_port;

/// A running server; `url` is a `postgres://` address of its `postgres` database.
pub struct Postgres {
    pub url: String,
    child: Child,
    dir: tempfile::TempDir,
}

/// The directory of PostgreSQL's server binaries (Debian keeps them off the PATH).
fn bin_dir() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| {
            let version = e.file_name().to_str()?.parse().ok()?;
            let bin = e.path().join("bin");
            bin.join("postgres").is_file().then_some((version, bin))
        })
        .collect();
    versions.sort();
    if let Some((_, bin)) = versions.pop() {
        return bin;
    }
    std::env::var_os("PATH")
        .and_then(|path| {
            std::env::split_paths(&path).find(|dir| dir.join("postgres").is_file())
        })
        .expect("PostgreSQL is not installed (Debian package postgresql; `cargo xtask test` installs it)")
}

fn is_root() -> bool {
    Command::new("id")
        .arg("-u")
        .output()
        .is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

/// A command run as the `postgres` user when we are root.
fn command(program: &Path) -> Command {
    if is_root() {
        let mut cmd = Command::new("runuser");
        cmd.args(["-u", "postgres", "--"]).arg(program);
        cmd
    } else {
        Command::new(program)
    }
}

impl Postgres {
    pub fn start() -> Self {
        let bin = bin_dir();
        let dir = tempfile::tempdir().unwrap();
        let data = dir.path().join("data");
        if is_root() {
            let status = Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path())
                .status()
                .unwrap();
            assert!(
                status.success(),
                "cannot give the data directory to postgres"
            );
        }
        let out = command(&bin.join("initdb"))
            .arg("-D")
            .arg(&data)
            .args(["-U", "paasm", "--auth=trust", "--no-sync", "-E", "UTF8"])
            .output()
            .expect("run initdb");
        assert!(
            out.status.success(),
            "initdb failed:\n{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        let port = free_port();
        let log = dir.path().join("server.log");
        let child = command(&bin.join("postgres"))
            .arg("-D")
            .arg(&data)
            .args(["-h", "127.0.0.1", "-p", &port.to_string()])
            .arg("-k")
            .arg(dir.path())
            .args(["-c", "fsync=off", "-c", "full_page_writes=off"])
            .stdout(Stdio::null())
            .stderr(std::fs::File::create(&log).unwrap())
            .spawn()
            .expect("start postgres");
        let server = Self {
            url: format!("postgres://paasm@127.0.0.1:{port}/postgres"),
            child,
            dir,
        };
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            if server.accepts() {
                return server;
            }
            assert!(
                Instant::now() < deadline,
                "postgres did not accept connections on {port}:\n{}",
                std::fs::read_to_string(&log).unwrap_or_default()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
    }

    /// Whether a real query gets an answer.
    fn accepts(&self) -> bool {
        let url = self.url.clone();
        std::thread::spawn(move || {
            ::postgres::Client::connect(&url, ::postgres::NoTls)
                .and_then(|mut c| c.simple_query("SELECT 1"))
                .is_ok()
        })
        .join()
        .unwrap_or(false)
    }
}

impl Drop for Postgres {
    fn drop(&mut self) {
        // SIGTERM to the server itself (its pid is the first line of postmaster.pid), not to
        // the runuser wrapper: a smart shutdown.
        let pid = std::fs::read_to_string(self.dir.path().join("data/postmaster.pid"))
            .ok()
            .and_then(|text| text.lines().next().map(str::to_string))
            .unwrap_or_else(|| self.child.id().to_string());
        let _ = Command::new("kill").args(["-TERM", &pid]).status();
        let deadline = Instant::now() + Duration::from_secs(20);
        while self.child.try_wait().ok().flatten().is_none() {
            if Instant::now() > deadline {
                let _ = self.child.kill();
                break;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        let _ = self.child.wait();
    }
}
