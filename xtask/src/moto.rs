//! moto, the EC2-compatible server the `ec2` driver is tested (and benchmarked) against:
//! `moto[server]` from PyPI, pinned, installed when missing into a virtual environment under
//! `<target>/toolchains/` (never system-wide). `cargo xtask test` hands its `moto_server` to the
//! tests as `PAASM_MOTO_SERVER`.

use std::path::PathBuf;

use anyhow::Result;

use crate::paths::Paths;

/// The moto release the tests run.
pub const MOTO: &str = "5.2.5";

/// The `moto_server` command, installed into a virtual environment when missing.
pub fn ensure_moto_server(paths: &Paths) -> Result<PathBuf> {
    crate::pypi::ensure(
        paths,
        &crate::pypi::Tool {
            dir: format!("moto-{MOTO}"),
            name: "moto",
            requirement: format!("moto[server]=={MOTO}"),
            command: "moto_server",
            installing: format!("installing moto[server] {MOTO} from PyPI"),
            needs_python: "the ec2 tests need python3 (with venv) to install moto",
        },
    )
}
