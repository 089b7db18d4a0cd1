//! `cargo xtask test`: build guests and the release workspace once, then run the whole test
//! suite against the real `paasm` binary and the real components (and the skeletons
//! `paasm new` writes, built the same way), then the guests' own unit
//! tests on this machine's target (and the Python guests' on this machine's Python).

use anyhow::Result;

use crate::cargo::{self, streamed};
use crate::guests;
use crate::paths::Paths;

/// Returns the exit code of `cargo test` (0 when everything passed).
pub fn run(paths: &Paths, extra: &[String]) -> Result<i32> {
    guests::build(paths)?;
    crate::system::ensure_test_commands()?;
    let moto_server = crate::moto::ensure_moto_server(paths)?;
    cargo::build_workspace(paths)?;
    // `paasm new`'s skeletons, which tests/integration/skeletons.rs runs the agent cases on.
    crate::skeletons::build(paths)?;

    let mut cmd = cargo::cargo(paths);
    cmd.args(["test", "--release", "--workspace"])
        .args(extra)
        .env("PAASM_BIN", paths.paasm_bin())
        .env("PAASM_COMPONENTS", paths.components())
        .env("PAASM_SERVICES_DIR", paths.services())
        .env("PAASM_CONFIG_DIR", paths.config_tree())
        .env("PAASM_MOTO_SERVER", &moto_server);
    eprintln!("    PAASM_BIN={}", paths.paasm_bin().display());
    eprintln!("    PAASM_COMPONENTS={}", paths.components().display());
    eprintln!("    PAASM_SERVICES_DIR={}", paths.services().display());
    let status = streamed("running the test suite", &mut cmd)?;
    if !status.success() {
        eprintln!("error: the test suite failed ({status})");
        return Ok(status.code().unwrap_or(1));
    }

    // The guests' own unit tests (the plain logic providers share), on this machine's target.
    let mut cmd = cargo::cargo(paths);
    cmd.args(["test", "--workspace", "--manifest-path"])
        .arg(paths.guests_manifest())
        .arg("--target-dir")
        .arg(paths.target.join("guests-host"));
    let status = streamed("running the guests' unit tests", &mut cmd)?;
    if !status.success() {
        eprintln!("error: the guests' unit tests failed ({status})");
        return Ok(status.code().unwrap_or(1));
    }
    if !crate::python::unit_tests(paths)? {
        eprintln!("error: the Python guests' unit tests failed");
        return Ok(1);
    }
    Ok(0)
}
