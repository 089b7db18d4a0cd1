//! An empty `get_helloworld`: no standard library, no imports, one core module.
//!
//! `cargo xtask bench` serves it beside the helloworld agent, so BENCHMARKS.md shows how much of
//! a call's cost is the host and wasmtime's instantiate + call + drop (this component) and how
//! much the helloworld agent adds (Rust's standard library and its WASI imports, the platform
//! calls it makes).

#![no_std]

extern crate alloc;

use alloc::string::String;
use core::alloc::{GlobalAlloc, Layout};
use core::cell::UnsafeCell;

wit_bindgen::generate!({ path: "wit", world: "empty" });

use exports::paasm_examples::helloworld::{commands, queries};

struct Empty;

impl queries::Guest for Empty {
    fn get_helloworld() -> Result<queries::Hello, String> {
        Ok(queries::Hello {
            result: String::from("helloworld"),
        })
    }
}

impl commands::Guest for Empty {
    fn startup() -> Result<(), String> {
        Ok(())
    }
}

export!(Empty);

/// Bytes the allocator hands out: a call allocates its reply and little else.
const HEAP_SIZE: usize = 64 << 10;

/// A bump allocator over a static buffer that starts over once everything it gave out has been
/// freed, which happens after every call (the reply is freed in post-return), so a reused
/// instance never runs out.
struct Bump {
    heap: UnsafeCell<[u8; HEAP_SIZE]>,
    next: UnsafeCell<usize>,
    live: UnsafeCell<usize>,
}

// SAFETY: a wasm instance runs one call at a time on one thread.
unsafe impl Sync for Bump {}

unsafe impl GlobalAlloc for Bump {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        // SAFETY: single-threaded (see `Sync` above), so nothing else holds these references.
        let (next, live) = unsafe { (&mut *self.next.get(), &mut *self.live.get()) };
        let start = (*next + layout.align() - 1) & !(layout.align() - 1);
        match start.checked_add(layout.size()) {
            Some(end) if end <= HEAP_SIZE => {
                *next = end;
                *live += 1;
                // SAFETY: `start..end` lies inside the buffer.
                unsafe { self.heap.get().cast::<u8>().add(start) }
            }
            _ => core::ptr::null_mut(),
        }
    }

    unsafe fn dealloc(&self, _ptr: *mut u8, _layout: Layout) {
        // SAFETY: as in `alloc`.
        let (next, live) = unsafe { (&mut *self.next.get(), &mut *self.live.get()) };
        *live -= 1;
        if *live == 0 {
            *next = 0;
        }
    }
}

#[global_allocator]
static ALLOCATOR: Bump = Bump {
    heap: UnsafeCell::new([0; HEAP_SIZE]),
    next: UnsafeCell::new(0),
    live: UnsafeCell::new(0),
};

#[panic_handler]
fn panic(_: &core::panic::PanicInfo) -> ! {
    core::arch::wasm32::unreachable()
}
