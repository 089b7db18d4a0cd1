//! Guests written in Python: a directory under `guests/` with a `guest.toml` naming the
//! language, the WIT world, the guest's own WIT directory and its module. `build-guests` builds
//! each with componentize-py, which it installs when missing into a virtual environment under
//! `<target>/toolchains/` (pinned, never system-wide).
//!
//! Any world of the repository's WIT packages can be built: an agent or a manager
//! (`paasm:service`), a resource provider (`paasm:resource/provider`), or a guest's own world
//! that includes one of them. The guest's WIT directory is the main package and every other
//! package under `wit/` becomes a dependency. A guest whose inputs (its files, its WIT, the
//! repository's WIT and the componentize-py version) did not change since its last build is
//! not built again, so its component keeps its bytes and its precompiled cache entry.

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
    let guests = crate::guests::foreign(paths, "python")?;
    if guests.is_empty() {
        return Ok(Vec::new());
    }
    let tool = ensure_componentize_py(paths)?;
    let mut built = Vec::new();
    for crate::guests::Foreign {
        name,
        dir,
        manifest,
    } in guests
    {
        let own_wit = dir.join(&manifest.wit);
        let own_wit = own_wit
            .canonicalize()
            .with_context(|| format!("{name}: cannot find its WIT {}", own_wit.display()))?;
        let packages = wit_packages(paths, &own_wit)?;
        let out = paths.components().join(format!("{name}.wasm"));
        let work = paths.target.join("python-guests").join(&name);
        let stamp = work.join("inputs.sha256");
        let tool_label = format!("componentize-py {COMPONENTIZE_PY}");
        let digest = inputs_digest(&tool_label, &dir, &own_wit, &packages, &manifest)?;
        if out.is_file() && fs::read_to_string(&stamp).is_ok_and(|s| s == digest) {
            eprintln!("    {name} is up to date");
            built.push((name, out));
            continue;
        }
        if work.exists() {
            fs::remove_dir_all(&work)?;
        }
        // The guest's WIT with the repository's other packages as dependencies.
        let wit = work.join("wit");
        copy_dir(&own_wit, &wit)?;
        for package in &packages {
            let dep = package.file_name().context("a WIT package has no name")?;
            copy_dir(package, &wit.join("deps").join(dep))?;
        }
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
        fs::write(&stamp, &digest).with_context(|| format!("cannot write {}", stamp.display()))?;
        built.push((name, out));
    }
    Ok(built)
}

/// The repository's WIT packages (`wit/<name>/`) other than the guest's own.
fn wit_packages(paths: &Paths, own: &Path) -> Result<Vec<PathBuf>> {
    let root = paths.root.join("wit");
    let mut packages = Vec::new();
    for entry in fs::read_dir(&root).with_context(|| format!("cannot read {}", root.display()))? {
        let path = entry?.path();
        if path.is_dir() && path.canonicalize()? != own {
            packages.push(path);
        }
    }
    packages.sort();
    Ok(packages)
}

/// The sha256 of everything a guest's component is built from.
pub(crate) fn inputs_digest(
    tool: &str,
    dir: &Path,
    own_wit: &Path,
    packages: &[PathBuf],
    manifest: &GuestManifest,
) -> Result<String> {
    use sha2::Digest;
    let mut hasher = sha2::Sha256::new();
    hasher.update(format!("{tool}\n{manifest:?}\n"));
    for root in [dir, own_wit]
        .into_iter()
        .chain(packages.iter().map(PathBuf::as_path))
    {
        let mut files = Vec::new();
        list_files(root, &mut files)?;
        files.sort();
        for file in files {
            hasher.update(file.display().to_string());
            hasher.update([0]);
            hasher.update(
                fs::read(&file).with_context(|| format!("cannot read {}", file.display()))?,
            );
        }
    }
    Ok(hex::encode(hasher.finalize()))
}

/// Every file under `dir`, but Python's bytecode caches.
fn list_files(dir: &Path, files: &mut Vec<PathBuf>) -> Result<()> {
    for entry in fs::read_dir(dir).with_context(|| format!("cannot read {}", dir.display()))? {
        let entry = entry?;
        let path = entry.path();
        if entry.file_type()?.is_dir() {
            if entry.file_name() != "__pycache__" {
                list_files(&path, files)?;
            }
        } else {
            files.push(path);
        }
    }
    Ok(())
}

/// Runs the Python guests' own unit tests (`test_*.py` beside their modules) on this
/// machine's Python, which needs nothing but the standard library; whether they all passed.
pub fn unit_tests(paths: &Paths) -> Result<bool> {
    let mut passed = true;
    for (name, dir) in guests(paths)? {
        let has_tests = fs::read_dir(&dir)?.flatten().any(|e| {
            let file = e.file_name();
            let file = file.to_string_lossy();
            file.starts_with("test_") && file.ends_with(".py")
        });
        if !has_tests {
            continue;
        }
        let mut cmd = Command::new("python3");
        cmd.args(["-B", "-m", "unittest", "discover", "-s"])
            .arg(&dir)
            .args(["-p", "test_*.py"])
            .current_dir(&dir);
        let status =
            crate::cargo::streamed(&format!("running the unit tests of {name}"), &mut cmd)?;
        passed &= status.success();
    }
    Ok(passed)
}

/// The componentize-py command, installed into a virtual environment when missing.
pub fn ensure_componentize_py(paths: &Paths) -> Result<PathBuf> {
    crate::pypi::ensure(
        paths,
        &crate::pypi::Tool {
            dir: format!("componentize-py-{COMPONENTIZE_PY}"),
            name: "componentize-py",
            requirement: format!("componentize-py=={COMPONENTIZE_PY}"),
            command: "componentize-py",
            installing: format!("installing componentize-py {COMPONENTIZE_PY} from PyPI"),
            needs_python: "Python guests need python3 (with venv) to install componentize-py",
        },
    )
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
