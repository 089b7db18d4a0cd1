//! Guests written in JavaScript (`language = "javascript"` in `guest.toml`, `module` the ES
//! module holding the exports): built with ComponentizeJS (SpiderMonkey through
//! StarlingMonkey), which `build-guests` installs from npm when missing into
//! `<target>/toolchains/componentize-js-<version>/` (pinned, never system-wide; needs `node`
//! and `npm`). The features the guests do not use (outgoing HTTP, the fetch event) are left
//! out of the component. A guest is built again only when its files, its WIT or the
//! ComponentizeJS version changed (a stamp of their digest beside its work directory).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cargo::step;
use crate::paths::Paths;

/// The ComponentizeJS release guests are built with.
pub const COMPONENTIZE_JS: &str = "0.23.0";

/// Builds every JavaScript guest into `<components>/<name>.wasm`; returns their paths.
pub fn build(paths: &Paths) -> Result<Vec<(String, PathBuf)>> {
    let guests = crate::guests::foreign(paths, "javascript")?;
    if guests.is_empty() {
        return Ok(Vec::new());
    }
    let cli = ensure_componentize_js(paths)?;
    let mut built = Vec::new();
    // The WIT packages every JavaScript guest gets as dependencies.
    let deps = ["platform", "service"].map(|name| paths.root.join("wit").join(name));
    for guest in guests {
        let work = paths.target.join("js-guests").join(&guest.name);
        let out = paths.components().join(format!("{}.wasm", guest.name));
        let own_wit = guest.dir.join(&guest.manifest.wit);
        // Built again only when something it is built from changed (as for Python guests).
        let stamp = paths
            .target
            .join("js-guests")
            .join(format!("{}.inputs.sha256", guest.name));
        let digest = crate::python::inputs_digest(
            &format!("componentize-js {COMPONENTIZE_JS}"),
            &guest.dir,
            &own_wit,
            &deps,
            &guest.manifest,
        )?;
        if out.is_file() && fs::read_to_string(&stamp).is_ok_and(|s| s == digest) {
            eprintln!("    {} is up to date", guest.name);
            built.push((guest.name, out));
            continue;
        }
        if work.exists() {
            fs::remove_dir_all(&work)
                .with_context(|| format!("cannot remove {}", work.display()))?;
        }
        // The guest's WIT with the platform and service packages as dependencies.
        let wit = work.join("wit");
        crate::python::copy_dir(&own_wit, &wit)?;
        for dep in &deps {
            let name = dep.file_name().context("a WIT package has no name")?;
            crate::python::copy_dir(dep, &wit.join("deps").join(name))?;
        }
        let source = guest.dir.join(&guest.manifest.module);
        if !source.is_file() {
            bail!(
                "{}: module {:?} is not a file in {}",
                guest.name,
                guest.manifest.module,
                guest.dir.display()
            );
        }
        fs::create_dir_all(paths.components())?;
        let tmp = out.with_extension("wasm.tmp");
        let mut cmd = node();
        cmd.arg(&cli)
            .arg(&source)
            .arg("--wit")
            .arg(&wit)
            .args(["--world-name", &guest.manifest.world])
            .args(["--disable", "http", "fetch-event"])
            .arg("--out")
            .arg(&tmp)
            .current_dir(&work);
        step(
            &format!("building {} with componentize-js", guest.name),
            &mut cmd,
        )?;
        fs::rename(&tmp, &out)
            .with_context(|| format!("cannot rename {} to {}", tmp.display(), out.display()))?;
        fs::write(&stamp, &digest).with_context(|| format!("cannot write {}", stamp.display()))?;
        built.push((guest.name, out));
    }
    Ok(built)
}

/// ComponentizeJS's command-line script, installed with npm when missing.
pub fn ensure_componentize_js(paths: &Paths) -> Result<PathBuf> {
    let dir = paths
        .target
        .join("toolchains")
        .join(format!("componentize-js-{COMPONENTIZE_JS}"));
    let cli = cli_in(&dir);
    if cli.is_file() {
        return Ok(cli);
    }
    for tool in ["node", "npm"] {
        let found = Command::new(tool)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success());
        if !found {
            bail!("JavaScript guests need {tool} (Node.js 18 or later) to install componentize-js");
        }
    }
    // Installed beside the final directory and renamed into place, so an interrupted install
    // is never taken for a complete one.
    let partial = dir.with_extension("partial");
    if partial.exists() {
        fs::remove_dir_all(&partial)
            .with_context(|| format!("cannot remove {}", partial.display()))?;
    }
    fs::create_dir_all(&partial).with_context(|| format!("cannot create {}", partial.display()))?;
    fs::write(
        partial.join("package.json"),
        "{\"name\":\"paasm-componentize-js\",\"private\":true}\n",
    )?;
    let mut cmd = Command::new("npm");
    cmd.args(["install", "--no-audit", "--no-fund", "--loglevel=error"])
        .arg(format!(
            "@bytecodealliance/componentize-js@{COMPONENTIZE_JS}"
        ))
        .current_dir(&partial);
    step(
        &format!("installing componentize-js {COMPONENTIZE_JS} from npm"),
        &mut cmd,
    )?;
    if !cli_in(&partial).is_file() {
        bail!(
            "npm installed componentize-js {COMPONENTIZE_JS}, but {} is missing",
            cli_in(&partial).display()
        );
    }
    fs::rename(&partial, &dir)
        .with_context(|| format!("cannot rename {} to {}", partial.display(), dir.display()))?;
    Ok(cli)
}

fn cli_in(dir: &Path) -> PathBuf {
    dir.join("node_modules/@bytecodealliance/componentize-js/src/cli.js")
}

fn node() -> Command {
    Command::new("node")
}
