//! The check of `paasm new`, part of `cargo xtask test`: the release `paasm` writes an agent
//! skeleton in every language into a scratch guests workspace (`<target>/skeletons/guests`),
//! and the same builders as `cargo xtask build-guests` build them into
//! `<target>/components/skeleton-agent-<lang>.wasm`, where the integration tests
//! (`tests/integration/skeletons.rs`) run the agent conformance cases against them.
//!
//! The scratch root links the repository's `wit/` (which the builders and the Rust skeleton's
//! `generate!` read); the Rust skeleton's path to the SDK is made absolute, since the SDK takes
//! its package fields from the repository's workspace.

use std::fs;
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cargo::step;
use crate::guests::{self, Component};
use crate::paths::Paths;

/// The skeletons checked: `paasm new --lang` and the name each is generated under (also its
/// component's file stem).
pub const SKELETONS: [(&str, &str); 5] = [
    ("rust", "skeleton-agent-rs"),
    ("python", "skeleton-agent-py"),
    ("js", "skeleton-agent-js"),
    ("c", "skeleton-agent-c"),
    ("go", "skeleton-agent-go"),
];

/// Generates every skeleton with the built `paasm` and builds it; returns the components.
pub fn build(paths: &Paths) -> Result<Vec<Component>> {
    let scratch = paths.target.join("skeletons");
    if scratch.exists() {
        fs::remove_dir_all(&scratch)
            .with_context(|| format!("cannot remove {}", scratch.display()))?;
    }
    let guests_dir = scratch.join("guests");
    fs::create_dir_all(&guests_dir)
        .with_context(|| format!("cannot create {}", guests_dir.display()))?;
    let wit = paths.root.join("wit");
    std::os::unix::fs::symlink(&wit, scratch.join("wit"))
        .with_context(|| format!("cannot link {} into {}", wit.display(), scratch.display()))?;

    // The guests workspace without its members (the profile and package fields stay), and its
    // lock file, so the skeleton builds with the same dependency versions.
    let manifest = fs::read_to_string(paths.guests_manifest())
        .with_context(|| format!("cannot read {}", paths.guests_manifest().display()))?;
    let start = manifest
        .find("members = [")
        .context("guests/Cargo.toml has no `members = [` list")?;
    let end = start
        + manifest[start..]
            .find(']')
            .context("guests/Cargo.toml: unterminated `members` list")?;
    let empty = format!(
        "{}members = [\n]{}",
        &manifest[..start],
        &manifest[end + 1..]
    );
    fs::write(guests_dir.join("Cargo.toml"), empty)
        .context("cannot write the scratch workspace")?;
    fs::copy(
        paths.root.join("guests/Cargo.lock"),
        guests_dir.join("Cargo.lock"),
    )
    .context("cannot copy guests/Cargo.lock")?;

    for (lang, name) in SKELETONS {
        let dir = guests_dir.join(name);
        let mut cmd = Command::new(paths.paasm_bin());
        cmd.args(["new", "--lang", lang, "--world", "agent", "--dir"])
            .arg(&dir)
            .arg(name);
        step(&format!("paasm new --lang {lang} {name}"), &mut cmd)?;
        if !dir.is_dir() {
            bail!("`paasm new --lang {lang}` wrote no {}", dir.display());
        }
    }
    let sdk = paths.root.join("sdk");
    let cargo_toml = guests_dir.join("skeleton-agent-rs/Cargo.toml");
    let text = fs::read_to_string(&cargo_toml)
        .with_context(|| format!("cannot read {}", cargo_toml.display()))?;
    if !text.contains("path = \"../../sdk\"") {
        bail!(
            "{}: no `path = \"../../sdk\"` dependency",
            cargo_toml.display()
        );
    }
    fs::write(
        &cargo_toml,
        text.replace(
            "path = \"../../sdk\"",
            &format!("path = {:?}", sdk.display().to_string()),
        ),
    )
    .with_context(|| format!("cannot write {}", cargo_toml.display()))?;

    let scratch_paths = Paths {
        root: scratch.clone(),
        target: paths.target.clone(),
    };
    let mut components = guests::build_rust(&scratch_paths)?;
    components.extend(guests::build_foreign(&scratch_paths)?);
    for (_, name) in SKELETONS {
        guests::find(&components, name)?;
    }
    println!(
        "skeletons built: {}",
        components
            .iter()
            .map(|c| c.name.as_str())
            .collect::<Vec<_>>()
            .join(", ")
    );
    Ok(components)
}
