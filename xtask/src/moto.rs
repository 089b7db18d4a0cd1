//! moto, the EC2-compatible server the `ec2` driver is tested (and benchmarked) against:
//! `moto[server]` from PyPI, pinned, installed when missing into a virtual environment under
//! `<target>/toolchains/` (never system-wide). `cargo xtask test` hands its `moto_server` to the
//! tests as `PAASM_MOTO_SERVER`.

use std::path::PathBuf;
use std::process::Command;

use anyhow::{Context, Result};

use crate::cargo::step;
use crate::paths::Paths;

/// The moto release the tests run.
pub const MOTO: &str = "5.2.5";

/// The `moto_server` command, installed into a virtual environment when missing.
pub fn ensure_moto_server(paths: &Paths) -> Result<PathBuf> {
    let venv = paths.target.join("toolchains").join(format!("moto-{MOTO}"));
    let server = venv.join("bin").join("moto_server");
    if server.is_file() {
        return Ok(server);
    }
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .context("the ec2 tests need python3 (with venv) to install moto")?;
    let mut cmd = Command::new(python);
    cmd.args(["-m", "venv"]).arg(&venv);
    step("creating a virtual environment for moto", &mut cmd)?;
    let mut cmd = Command::new(venv.join("bin").join("pip"));
    cmd.args(["install", "-q", &format!("moto[server]=={MOTO}")]);
    step(
        &format!("installing moto[server] {MOTO} from PyPI"),
        &mut cmd,
    )?;
    Ok(server)
}
