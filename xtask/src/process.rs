//! Child servers that announce their bound address on stdout, and what we read about them from
//! `/proc`.
//!
//! `paasm agent` prints `paasm agent listening on http://ADDR` once it is ready, and the bench's
//! native server prints `native-server listening on http://ADDR`; [`Announcing::ready`] waits
//! for that line and parses `ADDR`.

use std::io::{BufRead, BufReader, Write};
use std::net::SocketAddr;
use std::process::{Child, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, RecvTimeoutError};
use std::thread;
use std::time::Duration;

use anyhow::{Context, Result, anyhow, bail};

use crate::cargo::describe;

/// A spawned server whose announcement line has not been seen yet.
pub struct Announcing {
    child: Child,
    what: String,
    lines: mpsc::Receiver<String>,
}

impl Announcing {
    /// Spawns `cmd` with stdout piped. A thread reads stdout: the first line starting with
    /// `prefix` is the announcement; every other line is copied to our stdout when `forward`
    /// is set and dropped otherwise (the pipe is always drained, so the child never blocks).
    pub fn spawn(cmd: &mut Command, prefix: &str, forward: bool) -> Result<Self> {
        let what = describe(cmd);
        let mut child = cmd
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .spawn()
            .with_context(|| format!("cannot start `{what}`"))?;
        let stdout = child
            .stdout
            .take()
            .context("the child's stdout is not piped")?;
        let (tx, lines) = mpsc::channel();
        let prefix = prefix.to_owned();
        thread::spawn(move || {
            let mut announce = Some(tx);
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Some(rest) = line.strip_prefix(&prefix)
                    && let Some(tx) = announce.take()
                {
                    // The receiver may have given up already; then nobody needs the line.
                    let _ = tx.send(rest.trim().to_owned());
                    continue;
                }
                if forward {
                    let _ = writeln!(std::io::stdout().lock(), "{line}");
                }
            }
        });
        Ok(Self { child, what, lines })
    }

    /// The child's process id.
    pub fn id(&self) -> u32 {
        self.child.id()
    }

    /// Waits at most `timeout` for the announcement and returns the child and the rest of the
    /// announcement line; if the child exits first, or the time runs out, it is killed and
    /// reaped and the error says so.
    pub fn line(mut self, timeout: Duration) -> Result<(Child, String)> {
        match self.lines.recv_timeout(timeout) {
            Ok(rest) => Ok((self.child, rest)),
            Err(e) => {
                let _ = self.child.kill();
                let status = self.child.wait().context("cannot wait for the child")?;
                match e {
                    RecvTimeoutError::Timeout => {
                        bail!("`{}` did not announce itself within {timeout:?}", self.what)
                    }
                    RecvTimeoutError::Disconnected => {
                        bail!("`{}` exited ({status}) before announcing itself", self.what)
                    }
                }
            }
        }
    }

    /// Waits for the announcement (at most `timeout`, if given) and returns the child and the
    /// announced address. If the child exits first, or the time runs out, it is killed and
    /// reaped and the error says so.
    pub fn ready(mut self, timeout: Option<Duration>) -> Result<(Child, SocketAddr)> {
        let announced = match timeout {
            Some(timeout) => self.lines.recv_timeout(timeout),
            None => self
                .lines
                .recv()
                .map_err(|_| RecvTimeoutError::Disconnected),
        };
        let rest = match announced {
            Ok(rest) => rest,
            Err(RecvTimeoutError::Timeout) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                bail!(
                    "`{}` did not announce its address within {:?}",
                    self.what,
                    timeout.unwrap_or_default()
                );
            }
            Err(RecvTimeoutError::Disconnected) => {
                let status = self.child.wait().context("cannot wait for the child")?;
                bail!(
                    "`{}` exited ({status}) before announcing its address",
                    self.what
                );
            }
        };
        match parse_url(&rest) {
            Ok(addr) => Ok((self.child, addr)),
            Err(err) => {
                let _ = self.child.kill();
                let _ = self.child.wait();
                Err(err).with_context(|| format!("`{}` announced a bad address", self.what))
            }
        }
    }
}

/// `http://127.0.0.1:5555/` -> `127.0.0.1:5555`.
fn parse_url(url: &str) -> Result<SocketAddr> {
    let addr = url
        .strip_prefix("http://")
        .unwrap_or(url)
        .trim_end_matches('/');
    addr.parse()
        .map_err(|err| anyhow!("cannot parse `{addr}` as a socket address: {err}"))
}

/// Kills and reaps a child server when dropped, so no error path leaves one running.
pub struct KillOnDrop(pub Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// The shell-style exit code for a child's status (128 + signal when killed by one).
pub fn exit_code(status: ExitStatus) -> i32 {
    use std::os::unix::process::ExitStatusExt;
    match (status.code(), status.signal()) {
        (Some(code), _) => code,
        (None, Some(signal)) => 128 + signal,
        (None, None) => 1,
    }
}

/// CPU time (user + system, all threads) a live process has used so far, from
/// `/proc/<pid>/stat`.
pub fn cpu_time(pid: u32) -> Result<Duration> {
    let path = format!("/proc/{pid}/stat");
    let stat = std::fs::read_to_string(&path).with_context(|| format!("cannot read {path}"))?;
    // The command name (field 2) is in parentheses and may contain spaces: split after it.
    let after_comm = stat
        .rfind(')')
        .map(|i| &stat[i + 1..])
        .with_context(|| format!("unexpected format of {path}"))?;
    let fields: Vec<&str> = after_comm.split_whitespace().collect();
    // Field 3 (state) is fields[0]; utime is field 14 and stime field 15.
    let field = |n: usize| -> Result<u64> {
        fields
            .get(n - 3)
            .with_context(|| format!("{path} has no field {n}"))?
            .parse()
            .with_context(|| format!("field {n} of {path} is not a number"))
    };
    let ticks = field(14)? + field(15)?;
    Ok(Duration::from_secs_f64(
        ticks as f64 / clock_ticks_per_second() as f64,
    ))
}

fn clock_ticks_per_second() -> u64 {
    // SAFETY: sysconf only reads a configuration value.
    let ticks = unsafe { libc::sysconf(libc::_SC_CLK_TCK) };
    if ticks > 0 { ticks as u64 } else { 100 }
}

/// Makes this process ignore SIGINT. A Ctrl-C in the terminal reaches the whole foreground
/// process group, so the child still gets it; we stay alive to report how it exited.
pub fn ignore_sigint() {
    // SAFETY: setting a signal's disposition to SIG_IGN installs no handler code.
    unsafe {
        libc::signal(libc::SIGINT, libc::SIG_IGN);
    }
}
