//! Running cargo (and other tools) as steps: quiet behind a spinner, loud when they fail.

use std::ffi::OsStr;
use std::io::{IsTerminal, Write};
use std::process::{Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};

use crate::paths::Paths;

/// A `cargo` command run from the workspace root, using the cargo that started xtask.
pub fn cargo(paths: &Paths) -> Command {
    let program = std::env::var_os("CARGO").unwrap_or_else(|| "cargo".into());
    let mut cmd = Command::new(program);
    cmd.current_dir(&paths.root);
    cmd
}

/// `cargo build --release --workspace --all-targets`: the `paasm` host binary, the release
/// xtask that runs the bench, and every test binary, in one build.
///
/// Every command builds the same way on purpose. `cargo test --workspace` resolves features
/// across all members and their dev-dependencies; a narrower `cargo build -p paasm` can resolve
/// some shared dependency with fewer features, and then `cargo test` compiles the whole host
/// dependency tree (wasmtime included) a second time. Building all targets of the workspace
/// up front gives exactly the units `cargo test --release --workspace` needs, so the host is
/// compiled once per run and `test`, `up` and `bench` share one cache.
pub fn build_workspace(paths: &Paths) -> Result<()> {
    let mut cmd = cargo(paths);
    cmd.args(["build", "--release", "--workspace", "--all-targets"]);
    step(
        "building the paasm host and the workspace (release)",
        &mut cmd,
    )?;
    ensure_file(&paths.paasm_bin())
}

/// Fails with a clear message when a build did not leave the expected file behind.
pub fn ensure_file(path: &std::path::Path) -> Result<()> {
    if !path.is_file() {
        bail!(
            "expected {} after the build, but it is missing",
            path.display()
        );
    }
    Ok(())
}

/// Runs `cmd` to completion behind a spinner, capturing its output; prints the output only
/// if it fails, and then returns an error naming the command.
pub fn step(title: &str, cmd: &mut Command) -> Result<()> {
    let started = Instant::now();
    let interactive = std::io::stderr().is_terminal();
    if interactive && std::env::var_os("CARGO_TERM_COLOR").is_none() {
        cmd.env("CARGO_TERM_COLOR", "always");
    }
    let spinner = spinner(title, interactive);
    let output = cmd
        .stdin(Stdio::null())
        .output()
        .with_context(|| format!("cannot run `{}`", describe(cmd)));
    spinner.finish_and_clear();
    let output = output?;
    if !output.status.success() {
        let mut stderr = std::io::stderr().lock();
        // Best effort: the error below says what failed even if the dump cannot be written.
        let _ = stderr.write_all(&output.stdout);
        let _ = stderr.write_all(&output.stderr);
        bail!("{title} failed ({}): `{}`", output.status, describe(cmd));
    }
    eprintln!("    done {title} in {}", elapsed(started));
    Ok(())
}

/// Runs `cmd` with its output going straight to the terminal and returns its exit status.
pub fn streamed(title: &str, cmd: &mut Command) -> Result<ExitStatus> {
    eprintln!("==> {title}: `{}`", describe(cmd));
    cmd.status()
        .with_context(|| format!("cannot run `{}`", describe(cmd)))
}

/// A spinner on stderr when it is a terminal; otherwise a plain line, so logs show progress.
fn spinner(title: &str, interactive: bool) -> ProgressBar {
    if !interactive {
        eprintln!("==> {title}");
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::new_spinner();
    bar.set_style(
        ProgressStyle::with_template("{spinner:.cyan} {msg} ({elapsed})")
            .expect("the spinner template is valid"),
    );
    bar.set_message(title.to_string());
    bar.enable_steady_tick(Duration::from_millis(100));
    bar
}

/// `program arg arg ...` for messages.
pub fn describe(cmd: &Command) -> String {
    let program = cmd.get_program();
    let program = if program == std::env::var_os("CARGO").unwrap_or_default().as_os_str() {
        OsStr::new("cargo")
    } else {
        program
    };
    std::iter::once(program)
        .chain(cmd.get_args())
        .map(|part| part.to_string_lossy().into_owned())
        .collect::<Vec<_>>()
        .join(" ")
}

fn elapsed(started: Instant) -> String {
    format!("{:.1}s", started.elapsed().as_secs_f64())
}
