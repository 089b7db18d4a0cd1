//! Where things are: the workspace root, the target directory and what xtask puts in it.

use std::path::PathBuf;

use anyhow::{Context, Result};

/// The directories every command works with.
#[derive(Clone, Debug)]
pub struct Paths {
    /// The workspace root (the parent of xtask's manifest directory).
    pub root: PathBuf,
    /// `$CARGO_TARGET_DIR` if set, else `<root>/target`; always absolute.
    pub target: PathBuf,
}

impl Paths {
    /// Finds the root from this crate's location and the target directory from the environment.
    ///
    /// The location is the one `cargo run` gives the running binary, not the one it was
    /// compiled in: two checkouts sharing a `CARGO_TARGET_DIR` share one `target/debug/xtask`,
    /// which cargo does not always copy again when the other checkout's build is already
    /// fresh, so the compile-time path may name the other checkout.
    pub fn discover() -> Result<Self> {
        let manifest_dir = std::env::var_os("CARGO_MANIFEST_DIR")
            .map(PathBuf::from)
            .filter(|dir| dir.join("Cargo.toml").is_file())
            .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")));
        let root = manifest_dir
            .parent()
            .context("xtask's manifest directory has no parent")?
            .to_path_buf();
        let target = match std::env::var_os("CARGO_TARGET_DIR") {
            Some(dir) if !dir.is_empty() => std::path::absolute(PathBuf::from(dir))
                .context("cannot resolve CARGO_TARGET_DIR")?,
            _ => root.join("target"),
        };
        Ok(Self { root, target })
    }

    /// The separate workspace of guest crates.
    pub fn guests_manifest(&self) -> PathBuf {
        self.root.join("guests").join("Cargo.toml")
    }

    /// The target directory the guest workspace builds into.
    pub fn guests_target(&self) -> PathBuf {
        self.target.join("guests")
    }

    /// Where built components are collected, one `<crate-name>.wasm` each.
    pub fn components(&self) -> PathBuf {
        self.target.join("components")
    }

    /// Where assembled service packages go, one directory each.
    pub fn services(&self) -> PathBuf {
        self.target.join("services")
    }

    /// The default configuration tree.
    pub fn config_tree(&self) -> PathBuf {
        self.root.join("config")
    }

    /// The release `paasm` binary.
    pub fn paasm_bin(&self) -> PathBuf {
        self.target.join("release").join(exe("paasm"))
    }

    /// The release build of this crate, which runs the benchmark.
    pub fn xtask_release_bin(&self) -> PathBuf {
        self.target.join("release").join(exe("xtask"))
    }
}

fn exe(name: &str) -> String {
    format!("{name}{}", std::env::consts::EXE_SUFFIX)
}
