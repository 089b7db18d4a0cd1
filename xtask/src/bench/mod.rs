//! `cargo xtask bench`: throughput, latency and server CPU per request of `paasm agent` serving
//! the helloworld component (fresh and reused instances) against a native hyper baseline and a
//! bare hyper + wasmtime host (the host's `bare_host` example).
//!
//! `cargo xtask` itself is a debug build, which would make a poor load generator. So `bench`
//! builds guests and the release workspace (which includes a release build of this crate), then
//! runs `<target>/release/xtask bench-internal`, which starts each server as its own process,
//! drives it with [`load`], then measures a manager's `add_nodes` ([`scaling`]) and writes
//! BENCHMARKS.md.

mod languages;
pub mod load;
pub mod native;
mod report;
mod resources;
mod scaling;

use std::fs;
use std::net::SocketAddr;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

use anyhow::{Context, Result, bail};
use clap::Args;

use crate::BenchArgs;
use crate::agent::{self, Instances};
use crate::cargo::{self, ensure_file, streamed};
use crate::guests;
use crate::paths::Paths;
use crate::process::{self, Announcing, KillOnDrop};
use report::{Sample, Setup};

/// The component file (beside the helloworld agent's) with no imports and no standard library:
/// its rows are the floor of a call through `paasm agent` on the machine measured.
const EMPTY_COMPONENT: &str = "bench-empty.wasm";

/// What the host's `bare_host` example prints, followed by `http://ADDR`, once it listens (the
/// example's own `READY_PREFIX`).
const BARE_HOST_READY: &str = "bare-host listening on ";

/// How long a server may take to announce its address.
const READY_TIMEOUT: Duration = Duration::from_secs(120);

/// Arguments of the hidden `bench-internal` command, filled in by [`run`].
#[derive(Args, Debug)]
pub struct InternalArgs {
    #[command(flatten)]
    bench: BenchArgs,
    /// The release `paasm` binary
    #[arg(long)]
    paasm: Option<PathBuf>,
    /// The helloworld-agent component
    #[arg(long)]
    component: Option<PathBuf>,
    /// Directory for the agents' configuration, logs and state
    #[arg(long)]
    work_dir: PathBuf,
    /// The configuration tree (for the manager benchmark)
    #[arg(long)]
    config_dir: Option<PathBuf>,
    /// The assembled service packages (for the manager benchmark)
    #[arg(long)]
    services_dir: Option<PathBuf>,
    /// Where to write BENCHMARKS.md (not written when absent)
    #[arg(long)]
    report: Option<PathBuf>,
    /// The `moto_server` the ec2 cloud is measured against (not measured when absent)
    #[arg(long)]
    moto_server: Option<PathBuf>,
}

/// Builds what the bench needs and runs the release bench; returns its exit code.
pub fn run(paths: &Paths, args: &BenchArgs) -> Result<i32> {
    let mut component = None;
    if args.native_only {
        let mut cmd = cargo::cargo(paths);
        cmd.args(["build", "--release", "-p", "xtask"]);
        cargo::step("building xtask (release)", &mut cmd)?;
    } else {
        let components = guests::build(paths)?;
        crate::system::ensure_node_commands()?;
        component = Some(guests::find(&components, agent::HELLOWORLD)?);
        cargo::build_workspace(paths)?;
    }
    let bench = paths.xtask_release_bin();
    ensure_file(&bench)?;

    let mut cmd = Command::new(&bench);
    cmd.arg("bench-internal")
        .args(["--duration", &args.duration.to_string()])
        .args(["--warmup", &args.warmup.to_string()])
        .args(["--rounds", &args.rounds.to_string()])
        .args(["--connections", &args.connections.to_string()])
        .arg("--work-dir")
        .arg(paths.target.join("bench"));
    if let Some(component) = component {
        cmd.arg("--paasm")
            .arg(paths.paasm_bin())
            .arg("--component")
            .arg(component)
            .arg("--report")
            .arg(paths.root.join("BENCHMARKS.md"))
            .arg("--config-dir")
            .arg(paths.config_tree())
            .arg("--services-dir")
            .arg(paths.services());
        match crate::moto::ensure_moto_server(paths) {
            Ok(moto) => {
                cmd.arg("--moto-server").arg(moto);
            }
            Err(e) => eprintln!("the ec2 cloud will not be measured: {e:#}"),
        }
    } else {
        cmd.arg("--native-only");
    }
    let status = streamed("benchmarking", &mut cmd)?;
    Ok(process::exit_code(status))
}

/// The benchmark proper, in the release build.
pub fn run_internal(args: &InternalArgs) -> Result<()> {
    let bench = &args.bench;
    if bench.connections == 0 || bench.duration == 0 {
        bail!("--connections and --duration must be at least 1");
    }
    let setup = Setup::probe(
        command_line(bench),
        bench.connections,
        Duration::from_secs(bench.warmup),
        Duration::from_secs(bench.duration),
        bench.rounds,
    );
    fs::create_dir_all(&args.work_dir)
        .with_context(|| format!("cannot create {}", args.work_dir.display()))?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the load generator's tokio runtime")?;

    let exe = std::env::current_exe().context("cannot find the running xtask binary")?;
    let mut targets = vec![Target {
        name: "native hyper".into(),
        ready: native::READY_PREFIX,
        startup: false,
        log: None,
        command: Box::new(move || {
            let mut native = Command::new(&exe);
            native.arg("native-server");
            Ok(native)
        }),
    }];
    if !bench.native_only {
        let paasm = args
            .paasm
            .as_deref()
            .context("--paasm is required without --native-only")?;
        let component = args
            .component
            .as_deref()
            .context("--component is required without --native-only")?;
        let empty = component.with_file_name(EMPTY_COMPONENT);
        ensure_file(paasm)?;
        ensure_file(component)?;
        ensure_file(&empty)?;
        // The floor of a fresh instance per call for any host on this machine: paasm's HTTP
        // layer and engine around the empty component, nothing else (host/examples/bare_host.rs).
        let bare_host = example(paasm, "bare_host")?;
        let bare_component = empty.clone();
        targets.push(Target {
            name: "bare wasmtime host, empty component, instances = fresh".into(),
            ready: BARE_HOST_READY,
            startup: false,
            log: None,
            command: Box::new(move || {
                let mut bare = Command::new(&bare_host);
                bare.arg(&bare_component);
                Ok(bare)
            }),
        });
        let agents = [
            ("paasm agent", component.to_path_buf(), Instances::Fresh),
            ("paasm agent", component.to_path_buf(), Instances::Reuse),
            ("empty component", empty.clone(), Instances::Fresh),
            ("empty component", empty, Instances::Reuse),
        ];
        for (i, (label, component, instances)) in agents.into_iter().enumerate() {
            let dir = args.work_dir.join(format!("{i}-{instances}"));
            let _ = fs::remove_dir_all(&dir);
            let config = agent::write_config(&dir, instances)?;
            let stderr_path = dir.join("paasm.stderr.log");
            let paasm = paasm.to_path_buf();
            targets.push(Target {
                name: format!("{label}, instances = {instances}"),
                ready: agent::READY_PREFIX,
                startup: true,
                log: Some(stderr_path.clone()),
                command: Box::new(move || {
                    // Every round's agent appends to the same log.
                    let stderr = fs::File::options()
                        .create(true)
                        .append(true)
                        .open(&stderr_path)
                        .with_context(|| format!("cannot open {}", stderr_path.display()))?;
                    let listen: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
                    let mut cmd = agent::command(&paasm, &config, &component, listen);
                    cmd.stderr(Stdio::from(stderr));
                    Ok(cmd)
                }),
            });
        }
    }
    let mut samples: Vec<Vec<Sample>> = targets.iter().map(|_| Vec::new()).collect();
    for round in 1..=bench.rounds {
        eprintln!("==> round {round} of {}", bench.rounds);
        for (target, samples) in targets.iter().zip(&mut samples) {
            let mut cmd = (target.command)()?;
            let sample = measure(
                &runtime,
                &setup,
                &target.name,
                &mut cmd,
                target.ready,
                target.startup,
            )
            .with_context(|| match &target.log {
                Some(log) => format!(
                    "{} (round {round}; its stderr is in {})",
                    target.name,
                    log.display()
                ),
                None => format!("{} (round {round})", target.name),
            })?;
            samples.push(sample);
        }
    }
    let rows = report::summarize(
        targets
            .iter()
            .map(|t| t.name.clone())
            .zip(samples)
            .collect(),
    );

    let call_costs = match (&args.paasm, &args.component) {
        (Some(paasm), Some(component)) if !bench.native_only => {
            let mut costs = call_costs(paasm, component, "")?;
            let empty = component.with_file_name(EMPTY_COMPONENT);
            costs.extend(call_costs(paasm, &empty, ", empty component")?);
            costs
        }
        _ => Vec::new(),
    };

    let scaling = match (
        &args.paasm,
        &args.component,
        &args.config_dir,
        &args.services_dir,
    ) {
        (Some(paasm), Some(component), Some(config_dir), Some(services_dir))
            if !bench.native_only =>
        {
            Some(scaling::run(&scaling::Inputs {
                paasm,
                agent_component: component,
                config_dir,
                services_dir,
                work_dir: &args.work_dir,
                moto_server: args.moto_server.as_deref(),
            })?)
        }
        _ => None,
    };
    let resources = match (&args.paasm, &args.component) {
        (Some(paasm), Some(component)) if !bench.native_only => Some(resources::run(
            &runtime,
            paasm,
            component
                .parent()
                .context("the component has no directory")?,
            &args.work_dir,
            Duration::from_secs(bench.warmup.max(1)),
            Duration::from_secs(bench.duration.min(5)),
        )?),
        _ => None,
    };

    // The helloworld agent in every language, in its own section (languages.rs).
    let languages = match (&args.paasm, &args.component) {
        (Some(paasm), Some(component)) if !bench.native_only => {
            let inputs = languages::Inputs {
                paasm,
                components: component
                    .parent()
                    .context("the component has no directory")?,
                work_dir: &args.work_dir,
                connections: bench.connections,
                warmup: Duration::from_secs(bench.warmup.max(1)),
                duration: Duration::from_secs(bench.duration.min(5)),
            };
            let rows = languages::run(&runtime, &inputs)?;
            Some(languages::markdown(&rows, &inputs))
        }
        _ => None,
    };

    println!();
    print!("{}", report::table(&rows));
    print!("{}", report::host_cost(&rows));
    print!("{}", report::call_costs(&call_costs));
    if let Some(scaling) = &scaling {
        print!("{}", report::scaling_table(scaling));
    }
    if let Some(resources) = &resources {
        print!("{}", report::resources_table(resources));
    }
    if let Some(languages) = &languages {
        print!("{languages}");
    }
    if let Some(path) = &args.report {
        let mut text = report::markdown(
            &setup,
            &rows,
            &call_costs,
            scaling.as_ref(),
            resources.as_ref(),
        );
        text.push_str(languages.as_deref().unwrap_or_default());
        fs::write(path, text).with_context(|| format!("cannot write {}", path.display()))?;
        println!("\nwrote {}", path.display());
    }
    Ok(())
}

/// Runs the host's `call_cost` example (built beside the release `paasm`): the in-process
/// cost of one call per instance policy, as `(policy, microseconds)`, `suffix` appended to each
/// policy's name.
fn call_costs(
    paasm: &std::path::Path,
    component: &std::path::Path,
    suffix: &str,
) -> Result<Vec<(String, f64)>> {
    let exe = example(paasm, "call_cost")?;
    println!(
        "==> in-process call cost (no HTTP) of {}",
        component.display()
    );
    let output = Command::new(&exe)
        .arg(component)
        .output()
        .with_context(|| format!("cannot run {}", exe.display()))?;
    if !output.status.success() {
        bail!(
            "{} failed: {}",
            exe.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        );
    }
    String::from_utf8_lossy(&output.stdout)
        .lines()
        .map(|line| {
            let (policy, us) = line
                .split_once(' ')
                .with_context(|| format!("unexpected call_cost line {line:?}"))?;
            let us: f64 = us
                .parse()
                .with_context(|| format!("unexpected call_cost figure {us:?}"))?;
            println!("    {policy}: {us:.2} us per call");
            Ok((format!("{policy}{suffix}"), us))
        })
        .collect()
}

/// The host's example `name`, built beside the release `paasm`.
fn example(paasm: &std::path::Path, name: &str) -> Result<PathBuf> {
    let exe = paasm
        .parent()
        .context("the paasm binary has no parent directory")?
        .join("examples")
        .join(name);
    ensure_file(&exe)?;
    Ok(exe)
}

/// One server the load generator drives, started anew for every round.
struct Target {
    name: String,
    /// What it prints, followed by `http://ADDR`, once it listens.
    ready: &'static str,
    /// Whether it needs the ConPaaS `startup` call first (the agents).
    startup: bool,
    /// Where its stderr goes, when not to the bench's own.
    log: Option<PathBuf>,
    command: Box<dyn Fn() -> Result<Command>>,
}

/// Starts one server, prepares it, drives it and stops it.
fn measure(
    runtime: &tokio::runtime::Runtime,
    setup: &Setup,
    target: &str,
    cmd: &mut Command,
    ready_prefix: &str,
    conpaas_startup: bool,
) -> Result<Sample> {
    eprintln!("==> {target}");
    let announcing = Announcing::spawn(cmd, ready_prefix, false)?;
    let pid = announcing.id();
    let (child, addr) = announcing.ready(Some(READY_TIMEOUT))?;
    let _server = KillOnDrop(child);
    eprintln!("    listening on {addr} (pid {pid})");

    runtime.block_on(async {
        if conpaas_startup {
            let (status, body) =
                load::post_json(addr, r#"{"method":"startup","params":{},"id":1}"#)
                    .await
                    .context("startup failed")?;
            if !status.is_success() {
                bail!(
                    "startup answered {status}: {}",
                    String::from_utf8_lossy(&body)
                );
            }
        }
        load::verify_helloworld(addr).await
    })?;

    eprintln!(
        "    {} connections: {} s warmup, {} s measured",
        setup.connections,
        setup.warmup.as_secs(),
        setup.duration.as_secs()
    );
    let outcome = runtime.block_on(load::run(load::Load {
        addr,
        connections: setup.connections,
        warmup: setup.warmup,
        duration: setup.duration,
        server_pid: pid,
    }))?;
    if outcome.ok == 0 {
        bail!("no request succeeded ({} errors)", outcome.errors);
    }
    let quantile = |q: f64| Duration::from_micros(outcome.latency_us.value_at_quantile(q));
    let row = Sample {
        ok: outcome.ok,
        errors: outcome.errors,
        req_per_s: outcome.ok as f64 / outcome.window.as_secs_f64(),
        p50: quantile(0.50),
        p99: quantile(0.99),
        cpu_per_req: Duration::from_secs_f64(outcome.server_cpu.as_secs_f64() / outcome.ok as f64),
    };
    eprintln!(
        "    {:.0} req/s, {} ok, {} errors, server cpu {:.2} s",
        row.req_per_s,
        row.ok,
        row.errors,
        outcome.server_cpu.as_secs_f64()
    );
    Ok(row)
}

/// The user-facing command that produced these numbers.
fn command_line(args: &BenchArgs) -> String {
    let mut line = format!(
        "cargo xtask bench --duration {} --connections {}",
        args.duration, args.connections
    );
    if args.rounds != 3 {
        line.push_str(&format!(" --rounds {}", args.rounds));
    }
    if args.warmup != 2 {
        line.push_str(&format!(" --warmup {}", args.warmup));
    }
    if args.native_only {
        line.push_str(" --native-only");
    }
    line
}
