//! Logging into the host's log through the `paasm:platform/log` import.
//!
//! The macros take `format!` syntax and send one record per call; the host tags it with the
//! component's name and writes it to the service's log file and its own stderr:
//!
//! ```no_run
//! use paasm_sdk::log::{info, warn};
//!
//! let count = 2;
//! info!("agent started up");
//! warn!("{count} nodes are not answering");
//! ```

pub use crate::bindings::paasm::platform::log::Level;

/// Writes one record at `level`. The macros below are the usual way to call it.
pub fn log(level: Level, message: &str) {
    crate::bindings::paasm::platform::log::log(level, message);
}

/// Logs at an explicit [`Level`]: `log!(Level::Warn, "disk at {pct}%")`.
#[macro_export]
macro_rules! log {
    ($level:expr, $($arg:tt)+) => {
        $crate::log::log($level, &::std::format!($($arg)+))
    };
}

/// Logs at [`Level::Trace`] with `format!` syntax.
#[macro_export]
macro_rules! trace {
    ($($arg:tt)+) => { $crate::log!($crate::log::Level::Trace, $($arg)+) };
}

/// Logs at [`Level::Debug`] with `format!` syntax.
#[macro_export]
macro_rules! debug {
    ($($arg:tt)+) => { $crate::log!($crate::log::Level::Debug, $($arg)+) };
}

/// Logs at [`Level::Info`] with `format!` syntax.
#[macro_export]
macro_rules! info {
    ($($arg:tt)+) => { $crate::log!($crate::log::Level::Info, $($arg)+) };
}

/// Logs at [`Level::Warn`] with `format!` syntax.
#[macro_export]
macro_rules! warn {
    ($($arg:tt)+) => { $crate::log!($crate::log::Level::Warn, $($arg)+) };
}

/// Logs at [`Level::Error`] with `format!` syntax.
#[macro_export]
macro_rules! error {
    ($($arg:tt)+) => { $crate::log!($crate::log::Level::Error, $($arg)+) };
}

// The macros are exported at the crate root (`paasm_sdk::info!`); re-export the level macros
// here too so `use paasm_sdk::log::{info, warn};` reads naturally.
pub use crate::{debug, error, info, trace, warn};
