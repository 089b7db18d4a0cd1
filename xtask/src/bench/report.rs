//! The bench's results: the machine they were measured on, the table and BENCHMARKS.md.

use super::resources::ResourceBench;
use super::scaling::Scaling;
use std::fmt::Write as _;
use std::process::Command;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// One target measured once, in one round.
pub struct Sample {
    pub ok: u64,
    pub errors: u64,
    pub req_per_s: f64,
    pub p50: Duration,
    pub p99: Duration,
    /// Server CPU time per successful request.
    pub cpu_per_req: Duration,
}

/// One target over every round: each figure the median of its rounds.
pub struct Row {
    pub target: String,
    /// Errors of all rounds together.
    pub errors: u64,
    pub req_per_s: f64,
    /// Each round's req/s, in the order measured.
    pub rounds: Vec<f64>,
    /// The median over rounds of req/s relative to the first target's in the same round.
    pub ratio: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub cpu_per_req: Duration,
}

/// The rows of `targets`, each `(name, one sample per round)`, the first being the baseline
/// every ratio is taken against, round by round.
pub fn summarize(targets: Vec<(String, Vec<Sample>)>) -> Vec<Row> {
    let baseline: Vec<f64> = targets
        .first()
        .map(|(_, samples)| samples.iter().map(|s| s.req_per_s).collect())
        .unwrap_or_default();
    targets
        .into_iter()
        .map(|(target, samples)| {
            let ratios = samples
                .iter()
                .zip(&baseline)
                .map(|(s, &base)| if base > 0.0 { s.req_per_s / base } else { 0.0 });
            let micros = |f: fn(&Sample) -> Duration| {
                Duration::from_secs_f64(median(samples.iter().map(|s| f(s).as_secs_f64())))
            };
            Row {
                errors: samples.iter().map(|s| s.errors).sum(),
                req_per_s: median(samples.iter().map(|s| s.req_per_s)),
                rounds: samples.iter().map(|s| s.req_per_s).collect(),
                ratio: median(ratios),
                p50: micros(|s| s.p50),
                p99: micros(|s| s.p99),
                cpu_per_req: micros(|s| s.cpu_per_req),
                target,
            }
        })
        .collect()
}

/// The median of `values` (the mean of the middle two for an even count; 0 for none).
fn median(values: impl Iterator<Item = f64>) -> f64 {
    let mut values: Vec<f64> = values.collect();
    values.sort_by(f64::total_cmp);
    match values.len() {
        0 => 0.0,
        n if n % 2 == 1 => values[n / 2],
        n => (values[n / 2 - 1] + values[n / 2]) / 2.0,
    }
}

/// Where and how the numbers were measured.
pub struct Setup {
    pub date: String,
    pub nproc: String,
    pub cpu: String,
    pub memory: String,
    pub kernel: String,
    pub rustc: String,
    /// `/proc/loadavg`'s 1, 5 and 15 minute figures when the run started: other work on the
    /// machine makes every figure noisier.
    pub load: String,
    pub command: String,
    pub connections: usize,
    pub warmup: Duration,
    pub duration: Duration,
    /// Rounds over the servers.
    pub rounds: u64,
}

impl Setup {
    /// Probes the machine; whatever cannot be read shows as `unknown`.
    pub fn probe(
        command: String,
        connections: usize,
        warmup: Duration,
        duration: Duration,
        rounds: u64,
    ) -> Self {
        Self {
            date: utc_now(),
            nproc: tool_output("nproc", &[]).unwrap_or_else(|| {
                std::thread::available_parallelism()
                    .map(|n| n.to_string())
                    .unwrap_or_else(|_| "unknown".into())
            }),
            cpu: cpu_model().unwrap_or_else(|| "unknown".into()),
            memory: memory_total().unwrap_or_else(|| "unknown".into()),
            kernel: tool_output("uname", &["-r"]).unwrap_or_else(|| "unknown".into()),
            rustc: tool_output("rustc", &["--version"]).unwrap_or_else(|| "unknown".into()),
            load: load_average().unwrap_or_else(|| "unknown".into()),
            command,
            connections,
            warmup,
            duration,
            rounds,
        }
    }
}

/// The first three fields of `/proc/loadavg`.
fn load_average() -> Option<String> {
    let text = std::fs::read_to_string("/proc/loadavg").ok()?;
    let fields: Vec<&str> = text.split_whitespace().take(3).collect();
    (fields.len() == 3).then(|| fields.join(", "))
}

/// The results table in Markdown; ratios are req/s relative to the first row (the baseline),
/// round by round.
pub fn table(rows: &[Row]) -> String {
    let mut out = String::new();
    out.push_str(
        "| target | req/s | each round | p50 | p99 | CPU us/req | ratio to native | errors |\n",
    );
    out.push_str("|---|--:|--:|--:|--:|--:|--:|--:|\n");
    for row in rows {
        let rounds: Vec<String> = row
            .rounds
            .iter()
            .map(|r| format!("{:.1}k", r / 1000.0))
            .collect();
        let _ = writeln!(
            out,
            "| {} | {:.0} | {} | {} | {} | {:.1} | {:.2} | {} |",
            row.target,
            row.req_per_s,
            rounds.join(" "),
            latency(row.p50),
            latency(row.p99),
            row.cpu_per_req.as_secs_f64() * 1e6,
            row.ratio,
            row.errors,
        );
    }
    out
}

/// The host's own cost per call: server CPU per request above the native baseline.
pub fn host_cost(rows: &[Row]) -> String {
    let Some((native, rest)) = rows.split_first() else {
        return String::new();
    };
    let base = native.cpu_per_req.as_secs_f64() * 1e6;
    rest.iter()
        .map(|row| {
            let us = row.cpu_per_req.as_secs_f64() * 1e6;
            format!(
                "- {}: {:.1} us of server CPU per call above native ({us:.1} - {base:.1})\n",
                row.target,
                us - base
            )
        })
        .collect()
}

/// The in-process cost of one call per instance policy, as a table.
pub fn call_costs(costs: &[(String, f64)]) -> String {
    if costs.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\n| instance policy | wall time per call, in process, one thread |\n|---|--:|\n",
    );
    for (policy, us) in costs {
        let _ = writeln!(out, "| {policy} | {us:.2} us |");
    }
    out
}

/// The whole BENCHMARKS.md.
pub fn markdown(
    setup: &Setup,
    rows: &[Row],
    costs: &[(String, f64)],
    scaling: Option<&Scaling>,
    resources: Option<&ResourceBench>,
) -> String {
    let mut out = String::new();
    let _ = writeln!(out, "# Benchmarks\n");
    let _ = writeln!(
        out,
        "Written by `{}` on {}. Every run overwrites this file.\n",
        setup.command, setup.date
    );
    out.push_str("## Machine\n\n| | |\n|---|---|\n");
    let _ = writeln!(out, "| CPUs (`nproc`) | {} |", setup.nproc);
    let _ = writeln!(out, "| CPU | {} |", setup.cpu);
    let _ = writeln!(out, "| memory | {} |", setup.memory);
    let _ = writeln!(out, "| kernel (`uname -r`) | {} |", setup.kernel);
    let _ = writeln!(out, "| rustc | {} |", setup.rustc);
    let _ = writeln!(
        out,
        "| load average at start (1, 5, 15 min) | {} |",
        setup.load
    );
    out.push_str("\n## Results\n\n");
    out.push_str(&table(rows));
    let cost = host_cost(rows);
    if !cost.is_empty() {
        out.push_str("\nCost of instantiate + call + drop, per request:\n\n");
        out.push_str(&cost);
    }
    if !costs.is_empty() {
        out.push_str(
            "\nThe same cost measured in process, without HTTP (`host/examples/call_cost.rs`: \
             `get-helloworld` in a loop on one thread; `fresh` is instantiate + call + drop):\n",
        );
        out.push_str(&call_costs(costs));
    }
    if let Some(scaling) = scaling {
        out.push_str("\n### Manager: add_nodes on the local cloud\n\n");
        out.push_str(&scaling_table(scaling));
    }
    if let Some(resources) = resources {
        out.push_str("\n### Resources: account create+delete\n\n");
        out.push_str(&resources_table(resources));
    }
    let _ = write!(
        out,
        "\n## Method\n\n\
         - Targets: `native hyper` is a minimal hyper 1 + tokio (multi-thread) JSON-RPC 2.0 server\n  \
           that parses the body with serde_json and answers `get_helloworld` directly; `paasm agent`\n  \
           is the release `paasm agent` serving the `helloworld-agent` component with\n  \
           `[wasm] INSTANCES = fresh` (a new instance per call) and then `reuse` (warm instances),\n  \
           each after a ConPaaS `startup` call and one checked `get_helloworld` reply; it serves\n  \
           on one serving thread per CPU (its default `--threads`). The native server stays on\n  \
           one multi-thread runtime: the same serving threads gave it under 5% more requests per\n  \
           second by hand (wrk, this machine), against 30% more for a server that runs wasm. `empty\n  \
           component` is `guests/bench-empty` served the same way: `#![no_std]`, no imports (not\n  \
           even `paasm:platform`), one core module, a constant reply; its rows are the floor\n  \
           any component reaches through `paasm agent` on this machine, and the difference to\n  \
           them is what the helloworld agent itself costs (Rust's standard library with its\n  \
           WASI imports and two more core modules, its three platform calls). `bare wasmtime\n  \
           host` (`host/examples/bare_host.rs`) is paasm's own HTTP layer (`rpc::serve_http`,\n  \
           with the agent's serving threads) and paasm's own wasmtime engine (the same pooling allocator, epoch interruption, async\n  \
           calls) and nothing else: for every request a new store and instance of the empty\n  \
           component, one call, the store dropped, the string it returned put in the reply. It is\n  \
           the floor of a fresh instance per call for any host on this machine; the difference\n  \
           from it to `empty component, instances = fresh` is what paasm's own request path\n  \
           costs (the dialects, the method table, typed parameters, limits, state, output).\n\
         - Load: closed loop, {conns} keep-alive HTTP/1.1 connections on loopback, each sending\n  \
           `POST /` with `{{\"jsonrpc\":\"2.0\",\"method\":\"get_helloworld\",\"id\":1}}` and waiting for\n  \
           the reply before sending the next; {warmup} s warmup, then {duration} s measured. The\n  \
           same generator and connection count serve every target.\n\
         - Rounds: {rounds}, each starting every server above anew and measuring it once, in the\n  \
           order of the table. A figure is the median of its rounds (`each round` lists them),\n  \
           and a ratio the median of each round's ratio to that round's native figure, so a\n  \
           burst of other work on the machine moves one round's figures, not the result.\n\
         - req/s counts successful replies (HTTP 200 with a `result`) completed in the measured\n  \
           window; p50 and p99 are their latencies (HdrHistogram, microsecond resolution).\n\
         - CPU us/req is the server process's user + system time (`/proc/<pid>/stat`, all\n  \
           threads) over the measured window divided by the successful requests; the difference\n  \
           to the native row is what the host spends per call on instantiate + call + drop.\n\
         - The load generator runs on the same machine and shares its {nproc} CPU(s) with the\n  \
           server, so absolute numbers are lower than with a separate client; the ratios and the\n  \
           CPU per request are the figures to compare.\n\
         - Everything is a release build; the servers run as separate processes, so the\n  \
           generator never shares a runtime with them.\n\
         - add_nodes: `paasm manager --service helloworld` on the local cloud; the time from the\n  \
           `add_nodes` request to `RUNNING` (polled every 10 ms), each batch removed again before\n  \
           the next. The baseline starts the same number of `paasm agent` processes directly and\n  \
           waits until each answers `check_agent_process`; the difference is the manager's path\n  \
           (boot script, code fetched from the manager, polling, the `startup` hook). Memory is\n  \
           the manager's resident set (`VmRSS`, peak `VmHWM`).\n\
         - Resources: `paasm resources` with the `account` implementation; each client creates an\n  \
           account and deletes it again on one keep-alive connection, for the measured window\n  \
           after the warmup. The baseline does the same filesystem work natively with as many\n  \
           threads.\n",
        conns = setup.connections,
        warmup = setup.warmup.as_secs_f64(),
        duration = setup.duration.as_secs_f64(),
        rounds = setup.rounds,
        nproc = setup.nproc,
    );
    out
}

/// The resources table.
pub fn resources_table(r: &ResourceBench) -> String {
    format!(
        "| target | create+delete pairs/s | ratio to native |\n|---|--:|--:|\n\
         | native filesystem (mkdir, marker file, remove) | {:.0} | 1.00 |\n\
         | paasm resources, `account` (JSON-RPC 2.0, {} clients, {} s) | {:.0} | {:.3} |\n",
        r.native_pairs_per_s,
        r.clients,
        r.duration.as_secs(),
        r.pairs_per_s,
        r.pairs_per_s / r.native_pairs_per_s.max(1e-9)
    )
}

/// The add_nodes table.
pub fn scaling_table(scaling: &Scaling) -> String {
    let mut out = String::new();
    out.push_str(
        "| nodes | add_nodes to RUNNING | agents started directly | ratio | manager RSS after |\n\
         |--:|--:|--:|--:|--:|\n",
    );
    for b in &scaling.batches {
        let _ = writeln!(
            out,
            "| {} | {:.2} s | {:.2} s | {:.2} | {:.1} MiB |",
            b.nodes,
            b.add_nodes.as_secs_f64(),
            b.direct.as_secs_f64(),
            b.add_nodes.as_secs_f64() / b.direct.as_secs_f64().max(1e-9),
            b.manager_rss_kib as f64 / 1024.0
        );
    }
    let _ = writeln!(
        out,
        "\nManager memory: {:.1} MiB resident after startup, {:.1} MiB peak.",
        scaling.idle_rss_kib as f64 / 1024.0,
        scaling.peak_rss_kib as f64 / 1024.0
    );
    out.push_str(&clouds_table(scaling));
    out
}

/// `add_nodes` on the clouds whose nodes are separate hosts, against the local cloud's batch
/// of the same size from the same run.
fn clouds_table(scaling: &Scaling) -> String {
    let clouds = &scaling.clouds;
    if clouds.batches.is_empty() && clouds.skipped.is_empty() {
        return String::new();
    }
    let mut out = String::from(
        "\nOn clouds whose nodes are separate hosts, against the local cloud's batch of the same \
         size above:\n\n\
         | cloud | nodes are | nodes | add_nodes to RUNNING | local add_nodes | ratio | remove_nodes |\n\
         |---|---|--:|--:|--:|--:|--:|\n",
    );
    for c in &clouds.batches {
        let local = scaling.batches.iter().find(|b| b.nodes == c.nodes);
        let (local_s, ratio) = match local {
            Some(b) => (
                format!("{:.2} s", b.add_nodes.as_secs_f64()),
                format!(
                    "{:.2}",
                    c.add_nodes.as_secs_f64() / b.add_nodes.as_secs_f64().max(1e-9)
                ),
            ),
            None => ("-".into(), "-".into()),
        };
        let _ = writeln!(
            out,
            "| {} | {} | {} | {:.2} s | {local_s} | {ratio} | {:.2} s |",
            c.cloud,
            c.hosts,
            c.nodes,
            c.add_nodes.as_secs_f64(),
            c.remove_nodes.as_secs_f64()
        );
    }
    for (cloud, why) in &clouds.skipped {
        let _ = writeln!(out, "\n`{cloud}` was not measured: {why}.");
    }
    out
}

/// `0.81 ms`.
fn latency(duration: Duration) -> String {
    format!("{:.2} ms", duration.as_secs_f64() * 1e3)
}

fn tool_output(program: &str, args: &[&str]) -> Option<String> {
    let output = Command::new(program).args(args).output().ok()?;
    if !output.status.success() {
        return None;
    }
    let text = String::from_utf8_lossy(&output.stdout).trim().to_string();
    (!text.is_empty()).then_some(text)
}

fn cpu_model() -> Option<String> {
    let cpuinfo = std::fs::read_to_string("/proc/cpuinfo").ok()?;
    cpuinfo
        .lines()
        .find(|line| line.starts_with("model name"))
        .and_then(|line| line.split_once(':'))
        .map(|(_, model)| model.trim().to_string())
}

fn memory_total() -> Option<String> {
    let meminfo = std::fs::read_to_string("/proc/meminfo").ok()?;
    let kib: f64 = meminfo
        .lines()
        .find_map(|line| line.strip_prefix("MemTotal:"))?
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .ok()?;
    Some(format!("{:.1} GiB", kib / 1024.0 / 1024.0))
}

/// `2026-03-21 14:05 UTC`, from the system clock.
fn utc_now() -> String {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (days, rem) = (secs / 86_400, secs % 86_400);
    let (year, month, day) = civil_from_days(days as i64);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02} UTC",
        rem / 3600,
        rem % 3600 / 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sample(req_per_s: f64, cpu_us: u64) -> Sample {
        Sample {
            ok: 10,
            errors: 1,
            req_per_s,
            p50: Duration::from_micros(500),
            p99: Duration::from_micros(900),
            cpu_per_req: Duration::from_micros(cpu_us),
        }
    }

    #[test]
    fn rows_are_medians_and_ratios_are_taken_round_by_round() {
        let rows = summarize(vec![
            (
                "native".into(),
                vec![sample(100e3, 10), sample(50e3, 12), sample(90e3, 11)],
            ),
            (
                "guest".into(),
                vec![sample(60e3, 20), sample(40e3, 30), sample(45e3, 25)],
            ),
        ]);
        assert_eq!(rows[0].req_per_s, 90e3);
        assert_eq!(rows[0].ratio, 1.0);
        assert_eq!((rows[1].req_per_s, rows[1].rounds.len()), (45e3, 3));
        // The rounds' ratios are 0.6, 0.8 and 0.5: the median of them, not 45k / 90k.
        assert_eq!(rows[1].ratio, 0.6);
        assert_eq!(rows[1].cpu_per_req, Duration::from_micros(25));
        assert_eq!(rows[1].errors, 3);
        assert_eq!(median([4.0, 1.0, 3.0, 2.0].into_iter()), 2.5);
        assert!(
            table(&rows).contains("| guest | 45000 | 60.0k 40.0k 45.0k |"),
            "{}",
            table(&rows)
        );
    }

    #[test]
    fn civil_dates() {
        assert_eq!(civil_from_days(0), (1970, 1, 1));
        assert_eq!(civil_from_days(11_016), (2000, 2, 29));
        assert_eq!(civil_from_days(20_535), (2026, 3, 23));
    }
}
