//! Guests written in C (`language = "c"` in `guest.toml`, `module` the C source file holding
//! the exports): bindings from wit-bindgen's C generator, compiled with Debian's clang for
//! `wasm32-wasi` against `wasi-libc` (linked by lld) as a preview1 reactor module, then made a component with
//! the preview1 adapter (see `componentize.rs`). `build-guests` installs the Debian packages
//! when missing (`system::c_packages`).

use std::fs;
use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{Context, Result, bail};

use crate::cargo::step;
use crate::componentize;
use crate::paths::Paths;

/// The clang target: WASI preview1 (made a component afterwards).
const TARGET: &str = "wasm32-wasi";

/// Builds every C guest into `<components>/<name>.wasm`; returns their paths.
pub fn build(paths: &Paths) -> Result<Vec<(String, PathBuf)>> {
    let guests = crate::guests::foreign(paths, "c")?;
    if guests.is_empty() {
        return Ok(Vec::new());
    }
    ensure_toolchain()?;
    let mut built = Vec::new();
    for guest in guests {
        let source = guest.dir.join(&guest.manifest.module);
        if !source.is_file() {
            bail!(
                "{}: module {:?} is not a file in {}",
                guest.name,
                guest.manifest.module,
                guest.dir.display()
            );
        }
        let work = paths.target.join("c-guests").join(&guest.name);
        if work.exists() {
            fs::remove_dir_all(&work)
                .with_context(|| format!("cannot remove {}", work.display()))?;
        }
        let bindings = work.join("bindings");
        let mut wit = componentize::resolve(paths, &guest)?;
        // The bindings come with an object file that carries the world into the module.
        // Borrowed handles an export receives are dropped when it returns, as the Rust,
        // Python and JavaScript bindings do; by default the C ones leave that to the guest,
        // and a call that returns with a borrow still held traps.
        let opts = wit_bindgen_c::Opts {
            autodrop_borrows: wit_bindgen_c::Enabled::Yes,
            ..Default::default()
        };
        componentize::bindings(&mut wit, opts.build(), &bindings)
            .with_context(|| format!("{}: C bindings", guest.name))?;
        let mut sources = vec![source];
        for entry in fs::read_dir(&bindings)? {
            let path = entry?.path();
            if path.extension().is_some_and(|e| e == "c" || e == "o") {
                sources.push(path);
            }
        }
        let core = work.join("core.wasm");
        let mut cmd = Command::new("clang");
        cmd.arg(format!("--target={TARGET}"))
            .args(["-O2", "-mexec-model=reactor", "-Wl,--strip-all"])
            .args(["-Wall", "-Werror", "-I"])
            .arg(&bindings)
            .args(&sources)
            .arg("-o")
            .arg(&core);
        step(&format!("compiling {} with clang", guest.name), &mut cmd)?;
        let out = paths.components().join(format!("{}.wasm", guest.name));
        componentize::component(&wit, &core, &out, false)
            .with_context(|| format!("{}: component", guest.name))?;
        built.push((guest.name, out));
    }
    Ok(built)
}

/// Installs clang, wasi-libc and clang's wasm32 runtime from Debian when missing; returns
/// clang's version.
pub fn ensure_toolchain() -> Result<String> {
    if !crate::system::on_path("clang") {
        crate::system::install(&["clang"])?;
    }
    let version = clang(&["-dumpversion"])?;
    let major = version.split('.').next().unwrap_or(&version).to_string();
    let packages = crate::system::c_packages(&major);
    let mut missing = Vec::new();
    if !Path::new("/usr/lib/wasm32-wasi/libc.a").is_file() {
        missing.push(packages.libc);
    }
    // clang runs `wasm-ld-<major>` (Debian's lld-<major>).
    if !crate::system::on_path(&format!("wasm-ld-{major}")) {
        missing.push(packages.linker.as_str());
    }
    let runtime = clang(&[&format!("--target={TARGET}"), "-print-libgcc-file-name"])?;
    if !Path::new(&runtime).is_file() {
        missing.push(packages.runtime.as_str());
    }
    crate::system::install(&missing)?;
    Ok(version)
}

/// Runs clang with `args`; its first line of output.
fn clang(args: &[&str]) -> Result<String> {
    let output = Command::new("clang")
        .args(args)
        .output()
        .with_context(|| format!("cannot run `clang {}`", args.join(" ")))?;
    if !output.status.success() {
        bail!(
            "`clang {}` failed ({}): {}",
            args.join(" "),
            output.status,
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    Ok(String::from_utf8_lossy(&output.stdout)
        .lines()
        .next()
        .unwrap_or_default()
        .trim()
        .to_string())
}
