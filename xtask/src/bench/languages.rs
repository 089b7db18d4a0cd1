//! The helloworld agent in each language it is written in (Rust, Python, JavaScript, C, Go):
//! what its component costs. For each: the component's size; its first start with an empty
//! component cache (the host compiles it; the compile time is the host's own `compiled
//! component` log line) against a start that loads the precompiled artifact; then
//! `get_helloworld` under load with a fresh instance per call and with warm instances reused.
//! The difference in server CPU per request between the two is what one instantiate (and drop)
//! costs.

use std::fmt::Write as _;
use std::fs;
use std::net::SocketAddr;
use std::path::Path;
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};

use super::load;
use crate::agent::{self, Instances};
use crate::process::{Announcing, KillOnDrop};

/// The agents measured: (language, component name).
pub const AGENTS: [(&str, &str); 5] = [
    ("Rust", "helloworld-agent"),
    ("Python", "helloworld-agent-py"),
    ("JavaScript", "helloworld-agent-js"),
    ("C", "helloworld-agent-c"),
    ("Go", "helloworld-agent-go"),
];

/// How long an agent may take to start (Python's and JavaScript's first compile included).
const START_TIMEOUT: Duration = Duration::from_secs(300);

/// What one language's agent cost.
pub struct LanguageRow {
    pub language: &'static str,
    pub component: &'static str,
    pub size: u64,
    /// Compile time the host logged on the first start.
    pub precompile: Duration,
    /// From spawn to listening, with an empty cache and with the precompiled artifact.
    pub first_start: Duration,
    pub cached_start: Duration,
    pub fresh: Throughput,
    pub reuse: Throughput,
}

/// One load run.
pub struct Throughput {
    pub req_per_s: f64,
    pub cpu_per_req: Duration,
    pub errors: u64,
}

/// How the load runs are shaped.
pub struct Inputs<'a> {
    pub paasm: &'a Path,
    pub components: &'a Path,
    pub work_dir: &'a Path,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
}

/// Measures every agent whose component was built.
pub fn run(runtime: &tokio::runtime::Runtime, inputs: &Inputs) -> Result<Vec<LanguageRow>> {
    let mut rows = Vec::new();
    for (language, component) in AGENTS {
        let path = inputs.components.join(format!("{component}.wasm"));
        if !path.is_file() {
            bail!(
                "{language}: {} is missing (`cargo xtask build-guests` builds it)",
                path.display()
            );
        }
        eprintln!("==> {language} ({component})");
        let row = measure(runtime, inputs, language, component, &path)
            .with_context(|| format!("{language} agent ({component})"))?;
        eprintln!(
            "    {}, compiled in {:.2} s, start {:.2} s / {:.3} s cached, fresh {:.0} req/s, reuse {:.0} req/s",
            crate::guests::human_size(row.size),
            row.precompile.as_secs_f64(),
            row.first_start.as_secs_f64(),
            row.cached_start.as_secs_f64(),
            row.fresh.req_per_s,
            row.reuse.req_per_s
        );
        rows.push(row);
    }
    Ok(rows)
}

fn measure(
    runtime: &tokio::runtime::Runtime,
    inputs: &Inputs,
    language: &'static str,
    component: &'static str,
    path: &Path,
) -> Result<LanguageRow> {
    let size = fs::metadata(path)
        .with_context(|| format!("cannot stat {}", path.display()))?
        .len();
    let dir = inputs.work_dir.join("languages").join(component);
    let _ = fs::remove_dir_all(&dir);
    let cache = dir.join("component-cache");

    let mut fresh = None;
    let mut reuse = None;
    let mut first_start = Duration::ZERO;
    let mut cached_start = Duration::ZERO;
    let mut precompile = None;
    // The first run starts with an empty cache and compiles; the second loads the artifact.
    for instances in [Instances::Fresh, Instances::Reuse] {
        let run_dir = dir.join(instances.as_str());
        let config = agent::write_config(&run_dir, instances)?;
        let stderr_path = run_dir.join("paasm.stderr.log");
        let stderr = fs::File::create(&stderr_path)
            .with_context(|| format!("cannot create {}", stderr_path.display()))?;
        let listen: SocketAddr = "127.0.0.1:0".parse().expect("a valid address");
        let mut cmd = agent::command(inputs.paasm, &config, path, listen);
        cmd.arg("--cache-dir")
            .arg(&cache)
            .stderr(Stdio::from(stderr));
        let started = Instant::now();
        let announcing = Announcing::spawn(&mut cmd, agent::READY_PREFIX, false)?;
        let pid = announcing.id();
        let (child, addr) = announcing
            .ready(Some(START_TIMEOUT))
            .with_context(|| format!("its stderr is in {}", stderr_path.display()))?;
        let _server = KillOnDrop(child);
        let start = started.elapsed();
        let log = fs::read_to_string(run_dir.join("agent.log")).unwrap_or_default();
        match instances {
            Instances::Fresh => {
                first_start = start;
                precompile = compile_time(&log);
            }
            Instances::Reuse => {
                cached_start = start;
                if compile_time(&log).is_some() {
                    bail!("the second start compiled the component again instead of loading it");
                }
            }
        }
        let throughput = runtime.block_on(drive(inputs, addr, pid))?;
        match instances {
            Instances::Fresh => fresh = Some(throughput),
            Instances::Reuse => reuse = Some(throughput),
        }
    }
    Ok(LanguageRow {
        language,
        component,
        size,
        precompile: precompile
            .context("the first start logged no `compiled component` line with elapsed_ms")?,
        first_start,
        cached_start,
        fresh: fresh.expect("measured"),
        reuse: reuse.expect("measured"),
    })
}

/// ConPaaS `startup`, one checked `get_helloworld`, then the load.
async fn drive(inputs: &Inputs<'_>, addr: SocketAddr, pid: u32) -> Result<Throughput> {
    let (status, body) = load::post_json(addr, r#"{"method":"startup","params":{},"id":1}"#)
        .await
        .context("startup failed")?;
    if !status.is_success() {
        bail!(
            "startup answered {status}: {}",
            String::from_utf8_lossy(&body)
        );
    }
    load::verify_helloworld(addr).await?;
    let outcome = load::run(load::Load {
        addr,
        connections: inputs.connections,
        warmup: inputs.warmup,
        duration: inputs.duration,
        server_pid: pid,
    })
    .await?;
    if outcome.ok == 0 {
        bail!("no request succeeded ({} errors)", outcome.errors);
    }
    Ok(Throughput {
        req_per_s: outcome.ok as f64 / outcome.window.as_secs_f64(),
        cpu_per_req: Duration::from_secs_f64(outcome.server_cpu.as_secs_f64() / outcome.ok as f64),
        errors: outcome.errors,
    })
}

/// The `elapsed_ms` of the host's `compiled component` log line.
fn compile_time(log: &str) -> Option<Duration> {
    let line = log
        .lines()
        .find(|line| line.contains("compiled component"))?;
    let ms = line
        .split_whitespace()
        .find_map(|field| field.strip_prefix("elapsed_ms="))?
        .trim_matches(|c: char| !c.is_ascii_digit());
    ms.parse().ok().map(Duration::from_millis)
}

/// The BENCHMARKS.md section.
pub fn markdown(rows: &[LanguageRow], inputs: &Inputs) -> String {
    let mut md = String::new();
    let _ = writeln!(md, "\n## Guests by language\n");
    let _ = writeln!(
        md,
        "The helloworld agent in each language (`guests/helloworld-agent*`, all answering exactly \
         alike), served by `paasm agent`; `get_helloworld` over JSON-RPC 2.0 with {} connections, \
         {} s warmup, {} s measured per row.\n",
        inputs.connections,
        inputs.warmup.as_secs(),
        inputs.duration.as_secs()
    );
    let _ = writeln!(
        md,
        "| language | component | size | precompile | first start | cached start | fresh req/s | fresh CPU us/req | reuse req/s | reuse CPU us/req | instantiate (CPU us) |"
    );
    let _ = writeln!(md, "|---|---|--:|--:|--:|--:|--:|--:|--:|--:|--:|");
    for r in rows {
        let fresh_us = r.fresh.cpu_per_req.as_secs_f64() * 1e6;
        let reuse_us = r.reuse.cpu_per_req.as_secs_f64() * 1e6;
        let errors = r.fresh.errors + r.reuse.errors;
        let _ = writeln!(
            md,
            "| {} | `{}` | {} | {:.2} s | {:.2} s | {:.3} s | {:.0} | {:.1} | {:.0} | {:.1} | {:.1} |{}",
            r.language,
            r.component,
            crate::guests::human_size(r.size),
            r.precompile.as_secs_f64(),
            r.first_start.as_secs_f64(),
            r.cached_start.as_secs_f64(),
            r.fresh.req_per_s,
            fresh_us,
            r.reuse.req_per_s,
            reuse_us,
            fresh_us - reuse_us,
            if errors > 0 {
                format!(" {errors} errors")
            } else {
                String::new()
            }
        );
    }
    let _ = writeln!(
        md,
        "\n- precompile: the host's own compile time (`compiled component`, `elapsed_ms`) on a \
         start with an empty component cache; first start: from spawning `paasm agent` to its \
         listening line, that compile included; cached start: the same with the precompiled \
         artifact in the cache, which every later start of that component uses (so a big \
         component slows only its first start, never a call).\n\
         - fresh: `[wasm] INSTANCES = fresh`, a new instance per call (the default); reuse: warm \
         instances. CPU us/req is the agent process's user + system time over the window divided \
         by the replies; instantiate is fresh minus reuse, what one instantiate + drop costs."
    );
    md
}

#[cfg(test)]
mod tests {
    use super::compile_time;
    use std::time::Duration;

    #[test]
    fn the_compile_time_is_read_from_the_hosts_log_line() {
        let log = "2026-12-01T19:22:39.62Z  INFO paasm::engine::cache: compiled component component=\"helloworld-agent-go\" elapsed_ms=4413\n";
        assert_eq!(compile_time(log), Some(Duration::from_millis(4413)));
        assert_eq!(compile_time("INFO guest: Agent started up\n"), None);
    }
}
