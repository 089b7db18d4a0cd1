//! paasm's automation, run as `cargo xtask <command>`.
//!
//! - `build-guests`: build the guest workspace for `wasm32-wasip2` and collect the components
//! - `toolchains`: install only the guest toolchains that are missing
//! - `test`: build guests and the host once (release), then run the whole test suite against them
//! - `up`: build everything and run the frontend with the bundled services and a first user
//! - `bench`: measure the agent against a native hyper baseline and write BENCHMARKS.md
//!
//! The bench's load generator and native baseline server live here too, behind hidden
//! subcommands that `bench` runs from a release build of this crate.

mod agent;
mod bench;
mod c;
mod cargo;
mod componentize;
mod go;
mod guests;
mod js;
mod moto;
mod paths;
mod process;
mod pypi;
mod python;
mod services;
mod skeletons;
mod system;
mod test;
mod up;

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "cargo xtask",
    bin_name = "cargo xtask",
    about = "paasm's build, test, run and bench automation"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build every guest in guests/ for wasm32-wasip2 into <target>/components
    BuildGuests,
    /// Install only the guest toolchains that are missing (the wasm32-wasip2 rust target;
    /// componentize-py, componentize-js and Go under <target>/toolchains; clang and wasi-libc
    /// from Debian); idempotent
    Toolchains,
    /// Build guests and the release host, then run `cargo test --release --workspace`
    Test {
        /// Extra arguments appended to `cargo test --release --workspace`
        /// (e.g. `-- -p paasm` or `-- -- --nocapture`)
        #[arg(trailing_var_arg = true, allow_hyphen_values = true)]
        args: Vec<String>,
    },
    /// Build everything and run the frontend with the bundled services on the local cloud
    Up {
        /// Address the frontend listens on
        #[arg(long, default_value = "127.0.0.1:8080")]
        listen: SocketAddr,
    },
    /// Benchmark the agent (fresh and reuse) against a native hyper server; writes BENCHMARKS.md
    Bench(BenchArgs),
    /// Run the benchmark itself (started by `bench` from a release build)
    #[command(hide = true)]
    BenchInternal(bench::InternalArgs),
    /// Serve the native JSON-RPC baseline on 127.0.0.1:0 and print its address
    #[command(hide = true)]
    NativeServer,
}

/// Options of `cargo xtask bench`, shared with the internal run.
#[derive(Args, Clone, Debug)]
pub struct BenchArgs {
    /// Measured seconds per target
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub duration: u64,
    /// Warmup seconds per target, before the measured window
    #[arg(long, default_value_t = 2)]
    pub warmup: u64,
    /// Rounds over all the servers, each measured once per round; a figure is the median of
    /// its rounds, so a neighbour's burst on a shared machine moves one round, not the result
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u64).range(1..))]
    pub rounds: u64,
    /// Concurrent keep-alive connections of the closed-loop load generator
    #[arg(
        long,
        default_value_t = 64,
        value_parser = clap::builder::RangedU64ValueParser::<usize>::new().range(1..)
    )]
    pub connections: usize,
    /// Only measure the native baseline (no guests, no host; BENCHMARKS.md is left alone)
    #[arg(long)]
    pub native_only: bool,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::BuildGuests => paths::Paths::discover().and_then(|p| guests::build(&p).map(|_| 0)),
        Command::Toolchains => {
            paths::Paths::discover().and_then(|p| guests::toolchains(&p).map(|_| 0))
        }
        Command::Test { args } => paths::Paths::discover().and_then(|p| test::run(&p, &args)),
        Command::Up { listen } => paths::Paths::discover().and_then(|p| up::run(&p, listen)),
        Command::Bench(args) => paths::Paths::discover().and_then(|p| bench::run(&p, &args)),
        Command::BenchInternal(args) => bench::run_internal(&args).map(|_| 0),
        Command::NativeServer => bench::native::serve().map(|_| 0),
    };
    match result {
        Ok(code) => ExitCode::from(u8::try_from(code).unwrap_or(1)),
        Err(err) => {
            // Like cargo: the error, then its causes; no backtrace even if RUST_BACKTRACE is set.
            eprintln!("error: {err}");
            for cause in err.chain().skip(1) {
                eprintln!("  caused by: {cause}");
            }
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::Parser;

    use super::{Cli, Command};

    fn test_args(argv: &[&str]) -> Vec<String> {
        let argv = ["xtask", "test"].iter().chain(argv);
        match Cli::try_parse_from(argv)
            .expect("the command line parses")
            .command
        {
            Command::Test { args } => args,
            _ => panic!("not the test command"),
        }
    }

    #[test]
    fn test_passes_its_arguments_through() {
        assert!(test_args(&[]).is_empty());
        assert_eq!(test_args(&["--", "-p", "paasm"]), ["-p", "paasm"]);
        assert_eq!(
            test_args(&["--", "--", "--nocapture"]),
            ["--", "--nocapture"]
        );
        assert_eq!(test_args(&["some_filter"]), ["some_filter"]);
    }
}
