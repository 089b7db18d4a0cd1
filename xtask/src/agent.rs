//! Running a `paasm agent` locally: its INI configuration and its command line.

use std::fmt;
use std::fs;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};
use clap::ValueEnum;

/// What `paasm agent` prints (followed by `http://ADDR`) once it accepts connections.
pub const READY_PREFIX: &str = "paasm agent listening on ";

/// The component `up` and `bench` serve.
pub const HELLOWORLD: &str = "helloworld-agent";

/// The agent's `[wasm] INSTANCES` policy.
#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
pub enum Instances {
    /// A fresh instance for every call.
    Fresh,
    /// Warm instances reused across calls.
    Reuse,
}

impl Instances {
    /// The configuration value.
    pub fn as_str(self) -> &'static str {
        match self {
            Instances::Fresh => "fresh",
            Instances::Reuse => "reuse",
        }
    }
}

impl fmt::Display for Instances {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Writes `<dir>/agent.cfg` with every directory the agent uses under `dir` (created here) and
/// returns the file's path.
pub fn write_config(dir: &Path, instances: Instances) -> Result<PathBuf> {
    let subdirs = ["etc", "tmp", "cache", "run"];
    for sub in subdirs {
        let path = dir.join(sub);
        fs::create_dir_all(&path).with_context(|| format!("cannot create {}", path.display()))?;
    }
    let d = dir.display();
    let config = format!(
        "[agent]\n\
         LOG_FILE = {d}/agent.log\n\
         ETC = {d}/etc\n\
         VAR_TMP = {d}/tmp\n\
         VAR_CACHE = {d}/cache\n\
         VAR_RUN = {d}/run\n\
         STRING_TO_GENERATE = helloworld\n\
         \n\
         [wasm]\n\
         # fresh: a new instance per call; reuse: warm instances\n\
         INSTANCES = {instances}\n"
    );
    let path = dir.join("agent.cfg");
    fs::write(&path, config).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// `paasm agent --config CFG --component WASM --listen ADDR`.
pub fn command(paasm: &Path, config: &Path, component: &Path, listen: SocketAddr) -> Command {
    let mut cmd = Command::new(paasm);
    cmd.arg("agent")
        .arg("--config")
        .arg(config)
        .arg("--component")
        .arg(component)
        .arg("--listen")
        .arg(listen.to_string());
    cmd
}
