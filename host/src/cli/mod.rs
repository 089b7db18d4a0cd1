//! Command-line clients of paasm's servers: what an operator types instead of curl. The
//! `paasm` binary's subcommands that call a server (rather than serve) live here, so
//! `main.rs` stays a thin layer of argument parsing.

pub mod call;
pub mod frontend;
pub mod new;
