//! `cargo xtask build-guests`: build the guest workspace for `wasm32-wasip2` and collect each
//! member's component as `<target>/components/<crate-name>.wasm`, build the guests written in
//! other languages (a directory under `guests/` with a `guest.toml`: Python, JavaScript, C,
//! Go), installing the toolchains they need when missing, then assemble the service packages
//! that use them.

use std::fs;
use std::io::{ErrorKind, Read};
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::cargo::{self, step};
use crate::paths::Paths;

/// The rustup target guests are built for.
pub const TARGET: &str = "wasm32-wasip2";

/// Rust guests under `guests/` that are cargo workspaces of their own, built after the guest
/// workspace into the same target directory: `bench-empty` is `#![no_std]`, and its panic
/// handler cannot share a build with wit-bindgen's `std` feature, which the workspace enables.
const STANDALONE: [&str; 1] = ["bench-empty"];

/// The preamble bytes 4..8 of a component binary (a core module has `01 00 00 00`).
const COMPONENT_LAYER: [u8; 4] = [0x0d, 0x00, 0x01, 0x00];

/// One collected component.
#[derive(Debug)]
pub struct Component {
    /// The guest crate's package name, which is also the file stem.
    pub name: String,
    pub path: PathBuf,
    pub size: u64,
}

/// The languages of the guests with a `guest.toml`, as its `language` names them.
const LANGUAGES: [&str; 4] = ["python", "javascript", "c", "go"];

/// A guest written in another language than Rust: its `guest.toml`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct GuestManifest {
    /// One of [`LANGUAGES`].
    pub language: String,
    /// The WIT world the guest implements (`paasm-examples:helloworld/agent`).
    pub world: String,
    /// The guest's own WIT directory, relative to the guest.
    pub wit: String,
    /// What holds the exports: the Python module, the JavaScript file, the C source file or
    /// the Go module's name.
    pub module: String,
}

/// A guest directory with a `guest.toml`.
#[derive(Debug)]
pub struct Foreign {
    /// The directory's name, which is also the component's file stem.
    pub name: String,
    pub dir: PathBuf,
    pub manifest: GuestManifest,
}

/// The guests with a `guest.toml` written in `language`, by name; fails on a manifest that
/// does not parse or names a language paasm does not build.
pub fn foreign(paths: &Paths, language: &str) -> Result<Vec<Foreign>> {
    Ok(all_foreign(paths)?
        .into_iter()
        .filter(|guest| guest.manifest.language == language)
        .collect())
}

fn all_foreign(paths: &Paths) -> Result<Vec<Foreign>> {
    let root = paths.root.join("guests");
    let mut found = Vec::new();
    for entry in fs::read_dir(&root).with_context(|| format!("cannot read {}", root.display()))? {
        let dir = entry?.path();
        let manifest_path = dir.join("guest.toml");
        if !manifest_path.is_file() {
            continue;
        }
        let name = dir
            .file_name()
            .and_then(|n| n.to_str())
            .context("guest directory name is not UTF-8")?
            .to_string();
        let text = fs::read_to_string(&manifest_path)
            .with_context(|| format!("cannot read {}", manifest_path.display()))?;
        let manifest: GuestManifest = toml::from_str(&text)
            .with_context(|| format!("invalid {}", manifest_path.display()))?;
        if !LANGUAGES.contains(&manifest.language.as_str()) {
            bail!(
                "{}: language {:?} is not one paasm builds (expected one of {})",
                manifest_path.display(),
                manifest.language,
                LANGUAGES.join(", ")
            );
        }
        found.push(Foreign {
            name,
            dir,
            manifest,
        });
    }
    found.sort_by(|a, b| a.name.cmp(&b.name));
    Ok(found)
}

/// Installs the toolchains the guests need, when missing: the rust target and, for each
/// language some guest is written in, its toolchain (under `<target>/toolchains/`, or Debian's
/// packages for C).
pub fn toolchains(paths: &Paths) -> Result<()> {
    ensure_rust_target(paths)?;
    if !crate::python::guests(paths)?.is_empty() {
        let tool = crate::python::ensure_componentize_py(paths)?;
        println!("componentize-py: {}", tool.display());
    }
    if !foreign(paths, "javascript")?.is_empty() {
        let tool = crate::js::ensure_componentize_js(paths)?;
        println!("componentize-js: {}", tool.display());
    }
    if !foreign(paths, "c")?.is_empty() {
        let clang = crate::c::ensure_toolchain()?;
        println!("clang for wasm32-wasi: {clang}");
    }
    if !foreign(paths, "go")?.is_empty() {
        let go = crate::go::ensure_go(paths)?;
        println!("go: {}", go.display());
    }
    println!("the guest toolchains are installed");
    Ok(())
}

/// Builds every guest and returns the collected components.
pub fn build(paths: &Paths) -> Result<Vec<Component>> {
    let manifest = paths.guests_manifest();
    if !manifest.is_file() {
        bail!("no guest workspace: {} does not exist", manifest.display());
    }
    ensure_rust_target(paths)?;
    let mut components = build_rust(paths)?;
    let components_dir = paths.components();

    // Every manifest is checked before anything is built.
    all_foreign(paths)?;
    components.extend(build_foreign(paths)?);

    println!("components in {}:", components_dir.display());
    let width = components.iter().map(|c| c.name.len()).max().unwrap_or(0);
    for c in &components {
        println!("  {:<width$}  {:>10}", c.name, human_size(c.size));
    }
    crate::services::assemble(paths)?;
    Ok(components)
}

/// Builds the members of the cargo workspace `paths.guests_manifest()` and collects their
/// components.
pub fn build_rust(paths: &Paths) -> Result<Vec<Component>> {
    let manifest = paths.guests_manifest();
    let guests = members(paths)?;
    if guests.is_empty() {
        bail!(
            "{} has no member that builds a component",
            manifest.display()
        );
    }

    let guests_target = paths.guests_target();
    let mut cmd = cargo::cargo(paths);
    cmd.arg("build")
        .args(["--release", "--target", TARGET, "--manifest-path"])
        .arg(&manifest)
        .arg("--target-dir")
        .arg(&guests_target);
    step(
        &format!("building {} guest(s) for {TARGET}", guests.len()),
        &mut cmd,
    )?;

    // A scratch guests workspace (the skeletons') has none of them.
    let standalone: Vec<&str> = STANDALONE
        .into_iter()
        .filter(|name| standalone_manifest(paths, name).is_file())
        .collect();
    for name in &standalone {
        let mut cmd = cargo::cargo(paths);
        cmd.arg("build")
            .args(["--release", "--target", TARGET, "--manifest-path"])
            .arg(standalone_manifest(paths, name))
            .arg("--target-dir")
            .arg(&guests_target);
        step(&format!("building {name} for {TARGET}"), &mut cmd)?;
    }
    let guests = guests
        .into_iter()
        .chain(standalone.iter().map(|name| Guest {
            package: name.to_string(),
            artifact: format!("{}.wasm", name.replace('-', "_")),
        }));

    let out_dir = guests_target.join(TARGET).join("release");
    let components_dir = paths.components();
    fs::create_dir_all(&components_dir)
        .with_context(|| format!("cannot create {}", components_dir.display()))?;
    let mut components = Vec::new();
    for guest in guests {
        let built = out_dir.join(&guest.artifact);
        check_component(&built)?;
        let dest = components_dir.join(format!("{}.wasm", guest.package));
        install(&built, &dest)?;
        let size = fs::metadata(&dest)
            .with_context(|| format!("cannot stat {}", dest.display()))?
            .len();
        components.push(Component {
            name: guest.package.clone(),
            path: dest,
            size,
        });
    }

    Ok(components)
}

/// The manifest of the standalone guest `name` (one of [`STANDALONE`]).
fn standalone_manifest(paths: &Paths, name: &str) -> PathBuf {
    paths
        .guests_manifest()
        .with_file_name(name)
        .join("Cargo.toml")
}

/// Builds the guests with a `guest.toml` under `<root>/guests` (Python, JavaScript, C, Go) and
/// checks each is a component.
pub fn build_foreign(paths: &Paths) -> Result<Vec<Component>> {
    let mut built = crate::python::build(paths)?;
    built.extend(crate::js::build(paths)?);
    built.extend(crate::c::build(paths)?);
    built.extend(crate::go::build(paths)?);
    let mut components = Vec::with_capacity(built.len());
    for (name, path) in built {
        check_component(&path)?;
        let size = fs::metadata(&path)
            .with_context(|| format!("cannot stat {}", path.display()))?
            .len();
        components.push(Component { name, path, size });
    }
    Ok(components)
}

/// A guest crate and the file cargo produces for it.
struct Guest {
    package: String,
    /// File name under `<guests target>/wasm32-wasip2/release/`.
    artifact: String,
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<Package>,
}

#[derive(Deserialize)]
struct Package {
    name: String,
    targets: Vec<Target>,
}

#[derive(Deserialize)]
struct Target {
    name: String,
    kind: Vec<String>,
}

/// Reads the guest workspace's members with `cargo metadata`. A member with a `cdylib` target
/// yields `<lib_name>.wasm` (dashes become underscores); otherwise its first binary yields
/// `<bin-name>.wasm`; members with neither (shared helper crates) are skipped.
fn members(paths: &Paths) -> Result<Vec<Guest>> {
    let mut cmd = cargo::cargo(paths);
    cmd.args([
        "metadata",
        "--format-version",
        "1",
        "--no-deps",
        "--manifest-path",
    ])
    .arg(paths.guests_manifest());
    let output = cmd
        .output()
        .with_context(|| format!("cannot run `{}`", cargo::describe(&cmd)))?;
    if !output.status.success() {
        bail!(
            "`{}` failed ({}):\n{}",
            cargo::describe(&cmd),
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let metadata: Metadata =
        serde_json::from_slice(&output.stdout).context("cannot parse cargo metadata output")?;
    let mut guests = Vec::new();
    for package in metadata.packages {
        let has = |kind: &str| {
            package
                .targets
                .iter()
                .find(|t| t.kind.iter().any(|k| k == kind))
        };
        let artifact = if let Some(lib) = has("cdylib") {
            format!("{}.wasm", lib.name.replace('-', "_"))
        } else if let Some(bin) = has("bin") {
            format!("{}.wasm", bin.name)
        } else {
            continue;
        };
        guests.push(Guest {
            package: package.name,
            artifact,
        });
    }
    guests.sort_by(|a, b| a.package.cmp(&b.package));
    Ok(guests)
}

/// Installs the guest target with rustup when the active toolchain lacks it.
fn ensure_rust_target(paths: &Paths) -> Result<()> {
    let guests_dir = paths.root.join("guests");
    let output = match Command::new("rustup")
        .args(["target", "list", "--installed"])
        .current_dir(&guests_dir)
        .output()
    {
        Ok(output) => output,
        Err(err) if err.kind() == ErrorKind::NotFound => {
            eprintln!("note: rustup not found; assuming the toolchain has the {TARGET} target");
            return Ok(());
        }
        Err(err) => return Err(err).context("cannot run `rustup target list --installed`"),
    };
    if !output.status.success() {
        bail!(
            "`rustup target list --installed` failed ({}):\n{}",
            output.status,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let installed = String::from_utf8_lossy(&output.stdout);
    if installed.lines().any(|line| line.trim() == TARGET) {
        return Ok(());
    }
    let mut cmd = Command::new("rustup");
    cmd.args(["target", "add", TARGET]).current_dir(&guests_dir);
    step(&format!("installing the {TARGET} rust target"), &mut cmd)
}

/// Fails unless `path` starts with the wasm magic and the component layer.
fn check_component(path: &Path) -> Result<()> {
    let mut header = [0u8; 8];
    fs::File::open(path)
        .and_then(|mut file| file.read_exact(&mut header))
        .with_context(|| format!("cannot read the built guest {}", path.display()))?;
    if &header[..4] != b"\0asm" {
        bail!("{} is not a wasm binary", path.display());
    }
    if header[4..8] != COMPONENT_LAYER {
        bail!(
            "{} is a core wasm module, not a component (header {:02x?})",
            path.display(),
            &header[4..8]
        );
    }
    Ok(())
}

/// The path of the component built from the guest crate `name`.
pub fn find(components: &[Component], name: &str) -> Result<PathBuf> {
    components
        .iter()
        .find(|component| component.name == name)
        .map(|component| component.path.clone())
        .with_context(|| format!("the guest workspace has no `{name}` crate"))
}

/// Copies `from` to `to` through a temporary file and a rename, so a running host that has the
/// old file open never sees a half-written one.
fn install(from: &Path, to: &Path) -> Result<()> {
    let tmp = to.with_extension("wasm.tmp");
    fs::copy(from, &tmp)
        .with_context(|| format!("cannot copy {} to {}", from.display(), tmp.display()))?;
    fs::rename(&tmp, to)
        .with_context(|| format!("cannot rename {} to {}", tmp.display(), to.display()))
}

/// `52.3 KiB`, `2.5 MiB`.
pub fn human_size(bytes: u64) -> String {
    const UNITS: [&str; 4] = ["B", "KiB", "MiB", "GiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

#[cfg(test)]
mod tests {
    use super::{all_foreign, foreign};
    use crate::paths::Paths;

    fn guests_dir(test: &str, manifests: &[(&str, &str)]) -> Paths {
        let root = std::env::temp_dir().join(format!("xtask-{test}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        for (name, manifest) in manifests {
            let dir = root.join("guests").join(name);
            std::fs::create_dir_all(&dir).unwrap();
            std::fs::write(dir.join("guest.toml"), manifest).unwrap();
        }
        // A cargo guest: no guest.toml, not listed.
        std::fs::create_dir_all(root.join("guests/rusty")).unwrap();
        Paths {
            target: root.join("target"),
            root,
        }
    }

    const GO: &str =
        "language = \"go\"\nworld = \"a:b/c\"\nwit = \"wit\"\nmodule = \"wit_component\"\n";

    #[test]
    fn guests_are_listed_by_language() {
        let js = GO.replace("\"go\"", "\"javascript\"");
        let paths = guests_dir("by-language", &[("b-go", GO), ("a-js", &js), ("c-go", GO)]);
        let names = |language| -> Vec<String> {
            foreign(&paths, language)
                .unwrap()
                .into_iter()
                .map(|g| g.name)
                .collect()
        };
        assert_eq!(names("go"), ["b-go", "c-go"]);
        assert_eq!(names("javascript"), ["a-js"]);
        assert!(names("python").is_empty());
        std::fs::remove_dir_all(&paths.root).unwrap();
    }

    #[test]
    fn an_unknown_language_or_field_is_named() {
        let cobol = GO.replace("\"go\"", "\"cobol\"");
        let paths = guests_dir("unknown-language", &[("old", &cobol)]);
        let err = format!("{:#}", all_foreign(&paths).unwrap_err());
        assert!(
            err.contains("language \"cobol\" is not one paasm builds"),
            "{err}"
        );
        assert!(err.contains("python, javascript, c, go"), "{err}");
        std::fs::remove_dir_all(&paths.root).unwrap();

        let typo = format!("{GO}modul = \"x\"\n");
        let paths = guests_dir("unknown-field", &[("typo", &typo)]);
        let err = format!("{:#}", all_foreign(&paths).unwrap_err());
        assert!(err.contains("modul"), "{err}");
        std::fs::remove_dir_all(&paths.root).unwrap();
    }
}
