//! Guests written in Python: a directory under `guests/` with a `guest.toml` naming the
//! language, the WIT world, the guest's own WIT directory and its module. `build-guests` builds
//! each with componentize-py, which it installs when missing into a virtual environment under
//! `<target>/toolchains/` (pinned, never system-wide).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result};

use crate::cargo::step;
use crate::guests::GuestManifest;
use crate::paths::Paths;

/// The componentize-py release guests are built with.
const COMPONENTIZE_PY: &str = "0.25.1";

/// The Python guests: `(name, directory)`, by name.
pub fn guests(paths: &Paths) -> Result<Vec<(String, PathBuf)>> {
    Ok(crate::guests::foreign(paths, "python")?
        .into_iter()
        .map(|guest| (guest.name, guest.dir))
        .collect())
}

/// Builds every Python guest into `<components>/<name>.wasm`; returns their paths.
pub fn build(paths: &Paths) -> Result<Vec<(String, PathBuf)>> {
    let guests = guests(paths)?;
    if guests.is_empty() {
        return Ok(Vec::new());
    }
    let tool = ensure_componentize_py(paths)?;
    let mut built = Vec::new();
    for (name, dir) in guests {
        let manifest_path = dir.join("guest.toml");
        let manifest: GuestManifest = toml::from_str(&fs::read_to_string(&manifest_path)?)
            .with_context(|| format!("invalid {}", manifest_path.display()))?;
        let work = paths.target.join("python-guests").join(&name);
        if work.exists() {
            fs::remove_dir_all(&work)?;
        }
        // The guest's WIT with the platform and service packages as dependencies.
        let wit = work.join("wit");
        copy_dir(&dir.join(&manifest.wit), &wit)?;
        copy_dir(&paths.root.join("wit/platform"), &wit.join("deps/platform"))?;
        copy_dir(&paths.root.join("wit/service"), &wit.join("deps/service"))?;
        let bindings = work.join("bindings");
        let mut cmd = Command::new(&tool);
        cmd.arg("-d")
            .arg(&wit)
            .args(["-w", &manifest.world, "bindings"])
            .arg(&bindings);
        step(
            &format!("generating the Python bindings of {name}"),
            &mut cmd,
        )?;
        let out = paths.components().join(format!("{name}.wasm"));
        fs::create_dir_all(paths.components())?;
        let mut cmd = Command::new(&tool);
        cmd.arg("-d")
            .arg(&wit)
            .args(["-w", &manifest.world, "componentize", "-p"])
            .arg(&dir)
            .arg("-p")
            .arg(&bindings)
            .arg(&manifest.module)
            .arg("-o")
            .arg(&out);
        step(&format!("building {name} with componentize-py"), &mut cmd)?;
        built.push((name, out));
    }
    Ok(built)
}

/// The componentize-py command, installed into a virtual environment when missing.
pub fn ensure_componentize_py(paths: &Paths) -> Result<PathBuf> {
    let venv = paths
        .target
        .join("toolchains")
        .join(format!("componentize-py-{COMPONENTIZE_PY}"));
    let tool = venv.join("bin").join("componentize-py");
    if tool.is_file() {
        return Ok(tool);
    }
    let python = ["python3", "python"]
        .into_iter()
        .find(|p| {
            Command::new(p)
                .arg("--version")
                .output()
                .is_ok_and(|o| o.status.success())
        })
        .context("Python guests need python3 (with venv) to install componentize-py")?;
    let mut cmd = Command::new(python);
    cmd.args(["-m", "venv"]).arg(&venv);
    step(
        "creating a virtual environment for componentize-py",
        &mut cmd,
    )?;
    let mut cmd = Command::new(venv.join("bin").join("pip"));
    cmd.args([
        "install",
        "-q",
        &format!("componentize-py=={COMPONENTIZE_PY}"),
    ]);
    step(
        &format!("installing componentize-py {COMPONENTIZE_PY} from PyPI"),
        &mut cmd,
    )?;
    Ok(tool)
}

/// Copies the directory tree `from` to `to`.
pub fn copy_dir(from: &Path, to: &Path) -> Result<()> {
    fs::create_dir_all(to).with_context(|| format!("cannot create {}", to.display()))?;
    for entry in fs::read_dir(from).with_context(|| format!("cannot read {}", from.display()))? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        if entry.file_type()?.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else {
            fs::copy(entry.path(), &dest)
                .with_context(|| format!("cannot copy {}", entry.path().display()))?;
        }
    }
    Ok(())
}
