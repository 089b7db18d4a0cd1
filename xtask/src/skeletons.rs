//! The check of `paasm new`, part of `cargo xtask test`: the release `paasm` writes an agent,
//! a manager and a resource provider skeleton in every language into a scratch guests
//! workspace (`<target>/skeletons/guests`, the managers' service packages in
//! `<target>/skeletons/config/services`), and the same builders as `cargo xtask build-guests`
//! build them into `<target>/components/skeleton-<world>-<lang>.wasm` (the packages into
//! `<target>/services/`), where the integration tests (`tests/integration/skeletons.rs`) run
//! their world's conformance cases against them.
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

/// The skeletons checked: `paasm new --lang` and `--world`, and the name each is generated
/// under (also its component's file stem and, for a manager, its service package's name).
pub const SKELETONS: [(&str, &str, &str); 15] = [
    ("rust", "agent", "skeleton-agent-rs"),
    ("python", "agent", "skeleton-agent-py"),
    ("js", "agent", "skeleton-agent-js"),
    ("c", "agent", "skeleton-agent-c"),
    ("go", "agent", "skeleton-agent-go"),
    ("rust", "manager", "skeleton-manager-rs"),
    ("python", "manager", "skeleton-manager-py"),
    ("js", "manager", "skeleton-manager-js"),
    ("c", "manager", "skeleton-manager-c"),
    ("go", "manager", "skeleton-manager-go"),
    ("rust", "provider", "skeleton-provider-rs"),
    ("python", "provider", "skeleton-provider-py"),
    ("js", "provider", "skeleton-provider-js"),
    ("c", "provider", "skeleton-provider-c"),
    ("go", "provider", "skeleton-provider-go"),
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

    let packages = scratch.join("config").join("services");
    for (lang, world, name) in SKELETONS {
        let dir = guests_dir.join(name);
        let mut cmd = Command::new(paths.paasm_bin());
        cmd.args(["new", "--lang", lang, "--world", world, "--dir"])
            .arg(&dir)
            .arg("--package-dir")
            .arg(packages.join(name))
            .arg(name);
        step(
            &format!("paasm new --lang {lang} --world {world} {name}"),
            &mut cmd,
        )?;
        if !dir.is_dir() {
            bail!(
                "`paasm new --lang {lang} --world {world}` wrote no {}",
                dir.display()
            );
        }
        if world == "manager" && !packages.join(name).join("service.toml").is_file() {
            bail!("`paasm new --world manager` wrote no service package for {name}");
        }
        if lang == "rust" {
            absolute_sdk(paths, &dir.join("Cargo.toml"))?;
        }
    }

    let scratch_paths = Paths {
        root: scratch.clone(),
        target: paths.target.clone(),
    };
    let mut components = guests::build_rust(&scratch_paths)?;
    components.extend(guests::build_foreign(&scratch_paths)?);
    for (_, _, name) in SKELETONS {
        guests::find(&components, name)?;
    }
    // The managers' packages, beside the repository's in <target>/services/.
    crate::services::assemble(&scratch_paths)?;
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

/// Points a Rust skeleton's SDK dependency (`../../sdk`, right inside the repository) at the
/// repository's SDK, since the scratch workspace lives elsewhere.
fn absolute_sdk(paths: &Paths, cargo_toml: &std::path::Path) -> Result<()> {
    let sdk = paths.root.join("sdk");
    let text = fs::read_to_string(cargo_toml)
        .with_context(|| format!("cannot read {}", cargo_toml.display()))?;
    if !text.contains("path = \"../../sdk\"") {
        bail!(
            "{}: no `path = \"../../sdk\"` dependency",
            cargo_toml.display()
        );
    }
    fs::write(
        cargo_toml,
        text.replace(
            "path = \"../../sdk\"",
            &format!("path = {:?}", sdk.display().to_string()),
        ),
    )
    .with_context(|| format!("cannot write {}", cargo_toml.display()))
}
