//! The in-process cost of one call into a component, without HTTP: instantiate + call + drop
//! under the `fresh` policy, and a call on a warm instance under `reuse`.
//!
//! `cargo xtask bench` runs it against the helloworld agent and puts the figures beside the HTTP
//! results; by hand: `call_cost COMPONENT.wasm [CALLS] [POLICY]`. It calls `startup` once, then
//! `get-helloworld` CALLS times per policy on one thread, and prints `fresh <us>` and
//! `reuse <us>`, the mean wall time per call in microseconds. POLICY (`fresh` or `reuse`)
//! measures only that one, for profiling a single path (e.g. under callgrind).

use std::sync::Arc;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use paasm::config::IniConfig;
use paasm::engine::{CallLimits, InstancePolicy, Runtime, RuntimeOptions};
use paasm::platform::{PlatformHost, StateStore};

#[tokio::main(flavor = "current_thread")]
async fn main() -> Result<()> {
    let mut args = std::env::args().skip(1);
    let path = args
        .next()
        .context("usage: call_cost COMPONENT.wasm [CALLS] [POLICY]")?;
    let calls: u32 = match args.next() {
        Some(n) => n.parse().context("CALLS must be a whole number")?,
        None => 20_000,
    };
    let only = args.next();
    if let Some(only) = &only
        && only != "fresh"
        && only != "reuse"
    {
        bail!("POLICY must be fresh or reuse, not {only:?}");
    }
    let bytes = std::fs::read(&path).with_context(|| format!("cannot read {path}"))?;
    let runtime = Runtime::new(&RuntimeOptions {
        cache_dir: None,
        ..RuntimeOptions::default()
    })?;
    let config = IniConfig::parse("[agent]\nSTRING_TO_GENERATE = helloworld\n")?;
    let host = Arc::new(PlatformHost::new(
        "call-cost",
        Arc::new(config),
        StateStore::in_memory("call-cost")?,
    ));
    for (label, policy) in [
        ("fresh", InstancePolicy::Fresh),
        (
            "reuse",
            InstancePolicy::Reuse {
                max_calls: u32::MAX,
            },
        ),
    ] {
        if only.as_deref().is_some_and(|only| only != label) {
            continue;
        }
        let guest = runtime.load(
            "call-cost",
            &bytes,
            host.clone(),
            CallLimits::default(),
            policy,
        )?;
        let find = |name: &str| {
            guest
                .exports()
                .into_iter()
                .find(|f| f.name == name)
                .with_context(|| format!("{path} does not export {name}"))
        };
        let (startup, hello) = (find("startup")?, find("get-helloworld")?);
        guest.call(&startup, &[]).await?;
        // Warm up caches and the instance pool before measuring.
        for _ in 0..calls / 10 {
            guest.call(&hello, &[]).await?;
        }
        let started = Instant::now();
        for _ in 0..calls {
            let results = guest.call(&hello, &[]).await?;
            if results.is_empty() {
                bail!("get-helloworld returned nothing");
            }
        }
        let per_call = started.elapsed().as_secs_f64() * 1e6 / f64::from(calls);
        println!("{label} {per_call:.2}");
    }
    Ok(())
}
