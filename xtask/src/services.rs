//! Service packages: `cargo xtask build-guests` assembles every package source under
//! `config/services/<name>/` (a `service.toml` plus any annexes and scripts) with the built
//! components its manifest names into `<target>/services/<name>/`, the services directory the
//! tests and `cargo xtask up` run managers from. The assembled manifest gains the sha256 of
//! each component (`digest = "sha256:..."`), which `paasm service install` requires.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

use crate::paths::Paths;

/// Assembles every package; returns the services directory.
pub fn assemble(paths: &Paths) -> Result<PathBuf> {
    let sources = paths.root.join("config").join("services");
    let out = paths.services();
    fs::create_dir_all(&out).with_context(|| format!("cannot create {}", out.display()))?;
    let mut entries: Vec<PathBuf> = fs::read_dir(&sources)
        .with_context(|| format!("cannot read {}", sources.display()))?
        .flatten()
        .map(|e| e.path())
        .filter(|p| p.join("service.toml").is_file())
        .collect();
    entries.sort();
    for source in entries {
        let name = source
            .file_name()
            .and_then(|n| n.to_str())
            .context("package directory name is not UTF-8")?;
        let dest = out.join(name);
        assemble_one(paths, &source, &dest)
            .with_context(|| format!("cannot assemble service package {name}"))?;
        println!("service package {name}: {}", dest.display());
    }
    Ok(out)
}

fn assemble_one(paths: &Paths, source: &Path, dest: &Path) -> Result<()> {
    if dest.exists() {
        fs::remove_dir_all(dest).with_context(|| format!("cannot clear {}", dest.display()))?;
    }
    fs::create_dir_all(dest).with_context(|| format!("cannot create {}", dest.display()))?;
    for entry in fs::read_dir(source)? {
        let entry = entry?;
        if entry.file_type()?.is_file() {
            fs::copy(entry.path(), dest.join(entry.file_name()))
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    let manifest_path = source.join("service.toml");
    let text = fs::read_to_string(&manifest_path)?;
    let manifest: toml::Table =
        toml::from_str(&text).with_context(|| format!("invalid {}", manifest_path.display()))?;
    let mut edited: toml_edit::DocumentMut = text
        .parse()
        .with_context(|| format!("invalid {}", manifest_path.display()))?;
    for role in ["manager", "agent"] {
        let Some(file) = manifest
            .get(role)
            .and_then(|r| r.get("component"))
            .and_then(|c| c.as_str())
        else {
            bail!("{} has no {role}.component", manifest_path.display());
        };
        if !dest.join(file).is_file() {
            copy_built(paths, source, dest, role, file)?;
        }
        let bytes = fs::read(dest.join(file))?;
        let digest = format!(
            "sha256:{}",
            hex::encode(<sha2::Sha256 as sha2::Digest>::digest(&bytes))
        );
        edited[role]["digest"] = toml_edit::value(digest);
    }
    fs::write(dest.join("service.toml"), edited.to_string())
        .with_context(|| format!("cannot write {}", dest.join("service.toml").display()))?;
    Ok(())
}

/// Copies a built guest component into the package.
fn copy_built(paths: &Paths, source: &Path, dest: &Path, role: &str, file: &str) -> Result<()> {
    {
        let built = paths.components().join(file);
        if !built.is_file() {
            bail!(
                "{role}.component {file:?} is neither in {} nor a built guest in {}",
                source.display(),
                paths.components().display()
            );
        }
        fs::copy(&built, dest.join(file))
            .with_context(|| format!("cannot copy {}", built.display()))?;
    }
    Ok(())
}
