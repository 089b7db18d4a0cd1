//! A test guest that misbehaves on request: it traps, panics, spins forever, allocates large
//! amounts of memory, prints to stdout/stderr and traps after writing state. The integration
//! tests use it to check that the host contains every fault to the call that caused it and
//! discards the state written by a failed call.

use std::hint::black_box;
use std::io::Write;

use paasm_sdk::state;

wit_bindgen::generate!({
    path: ["../../wit/platform", "../../wit/service", "wit"],
    world: "paasm-tests:faults/agent",
    with: {
        "paasm:platform/types@0.1.0": paasm_sdk::bindings::paasm::platform::types,
        "paasm:platform/log@0.1.0": paasm_sdk::bindings::paasm::platform::log,
        "paasm:platform/config@0.1.0": paasm_sdk::bindings::paasm::platform::config,
        "paasm:platform/state@0.1.0": paasm_sdk::bindings::paasm::platform::state,
    },
});

use exports::paasm_tests::faults::{commands, queries};

struct Faults;

impl paasm_sdk::Lifecycle for Faults {}

paasm_sdk::export_lifecycle!(Faults);

/// Stops the guest with a wasm `unreachable` trap.
fn trap() -> ! {
    #[cfg(target_arch = "wasm32")]
    core::arch::wasm32::unreachable();
    #[cfg(not(target_arch = "wasm32"))]
    std::process::abort();
}

impl queries::Guest for Faults {
    fn ok() -> String {
        "ok".to_owned()
    }

    fn trap() -> String {
        trap()
    }

    fn panic(message: String) -> String {
        panic!("{message}")
    }

    fn spin() -> String {
        // `black_box` keeps the optimizer from proving the loop has no effect.
        let mut counter = 0u64;
        loop {
            counter = black_box(counter.wrapping_add(1));
        }
    }

    fn alloc(mib: u32) -> u32 {
        const PAGE: usize = 4096;
        let len = mib as usize * 1024 * 1024;
        let mut buf = vec![0u8; len];
        for (i, byte) in buf.iter_mut().step_by(PAGE).enumerate() {
            *byte = (i % 251) as u8 + 1;
        }
        let buf = black_box(buf);
        buf.iter().step_by(PAGE).map(|&b| u32::from(b)).sum()
    }

    fn print(message: String) -> String {
        // Explicit flushes: both streams are line-buffered or unbuffered, but a message without
        // a newline must still reach the host before the call returns.
        let mut out = std::io::stdout();
        let _ = writeln!(out, "{message}");
        let _ = out.flush();
        let mut err = std::io::stderr();
        let _ = writeln!(err, "{message}");
        let _ = err.flush();
        message
    }

    fn get(key: String) -> Option<String> {
        state::get_string(&key)
    }
}

impl commands::Guest for Faults {
    fn count() -> u32 {
        let count = state::get_string("count")
            .and_then(|s| s.parse::<u32>().ok())
            .unwrap_or(0)
            .wrapping_add(1);
        state::set_string("count", &count.to_string());
        count
    }

    fn set_then_trap(key: String) -> String {
        state::set_string(&key, "written");
        trap()
    }
}

export!(Faults);
