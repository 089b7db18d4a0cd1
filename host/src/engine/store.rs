//! What a wasmtime `Store` holds for one guest instance, and the limits applied to it.
//!
//! [`StoreState`] bundles the WASI context (no network, stdout and stderr captured in memory,
//! no filesystem but the directories the operator granted), the `paasm:platform` context and
//! the memory limiter. The WASI context is built when the guest first uses WASI: most calls
//! never do, and a fresh store per call should not pay for seeding its random generators and
//! setting up its captures. [`MemoryLimiter`] caps the whole guest: the sum of all its linear
//! memories, not each one separately as wasmtime's `StoreLimits` would.

use std::time::Instant;

use wasmtime::ResourceLimiter;
use wasmtime::component::ResourceTable;
use wasmtime_wasi::{WasiCtx, WasiCtxView, WasiView};

use super::output::OutputCapture;
use crate::platform::{PlatformCtx, PlatformView};

/// Table elements a guest may allocate in all its tables together.
const MAX_TABLE_ELEMENTS: usize = 1_000_000;

/// Caps the total linear memory of one guest instance.
pub(crate) struct MemoryLimiter {
    cap: usize,
    used: usize,
    tables: usize,
    /// Set when a growth was refused, so the resulting trap can be explained.
    pub(crate) exceeded: bool,
}

impl MemoryLimiter {
    fn new(cap: usize) -> Self {
        Self {
            cap,
            used: 0,
            tables: 0,
            exceeded: false,
        }
    }
}

impl ResourceLimiter for MemoryLimiter {
    fn memory_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let next = self.used.saturating_sub(current).saturating_add(desired);
        if next > self.cap {
            self.exceeded = true;
            return Ok(false);
        }
        self.used = next;
        Ok(true)
    }

    fn table_growing(
        &mut self,
        current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        let next = self.tables.saturating_sub(current).saturating_add(desired);
        if next > MAX_TABLE_ELEMENTS {
            return Ok(false);
        }
        self.tables = next;
        Ok(true)
    }
}

/// The data of one guest store.
pub(crate) struct StoreState {
    /// Built on the guest's first WASI call (in `WasiView::ctx`); `None` until then.
    wasi: Option<Wasi>,
    table: ResourceTable,
    platform: PlatformCtx,
    pub(crate) limiter: MemoryLimiter,
    /// When the current call must end.
    pub(crate) deadline: Instant,
}

/// The WASI context of a store and the captures behind its stdout and stderr.
struct Wasi {
    ctx: WasiCtx,
    stdout: OutputCapture,
    stderr: OutputCapture,
}

impl Wasi {
    fn new(grants: &[std::path::PathBuf]) -> Self {
        let stdout = OutputCapture::default();
        let stderr = OutputCapture::default();
        let mut builder = wasmtime_wasi::WasiCtxBuilder::new();
        builder.stdout(stdout.clone()).stderr(stderr.clone());
        for dir in grants {
            let guest_path = dir.to_string_lossy();
            if let Err(e) =
                builder.preopened_dir(dir, &*guest_path, wasmtime_wasi::FsPerms::ReadWrite)
            {
                // The call goes on without it; the guest's own error will name the path.
                tracing::error!("cannot grant {} to the guest: {e:#}", dir.display());
            }
        }
        Self {
            ctx: builder.build(),
            stdout,
            stderr,
        }
    }
}

impl StoreState {
    pub(crate) fn new(platform: PlatformCtx, memory_cap: usize, deadline: Instant) -> Self {
        Self {
            wasi: None,
            table: ResourceTable::new(),
            platform,
            limiter: MemoryLimiter::new(memory_cap),
            deadline,
        }
    }

    /// When the current call must end: its deadline, moved later by the time the call spent
    /// waiting in async host calls (nodes booting, agents answering).
    pub(crate) fn deadline(&self) -> Instant {
        self.deadline + self.platform.waited()
    }

    /// What the guest wrote to stdout and stderr since the last time this was asked, with
    /// the sensitive values it was given masked.
    pub(crate) fn take_output(&mut self) -> (String, String) {
        match &self.wasi {
            Some(wasi) => (
                self.platform.mask(wasi.stdout.take()),
                self.platform.mask(wasi.stderr.take()),
            ),
            // No WASI call, so nothing was written.
            None => (String::new(), String::new()),
        }
    }

    /// Gets the store ready for another call on the same instance.
    pub(crate) fn begin_call(&mut self, deadline: Instant) {
        self.deadline = deadline;
        self.limiter.exceeded = false;
        self.platform.begin_call();
    }
}

impl WasiView for StoreState {
    fn ctx(&mut self) -> WasiCtxView<'_> {
        let grants = self.platform.grants();
        let wasi = self.wasi.get_or_insert_with(|| Wasi::new(grants));
        WasiCtxView {
            ctx: &mut wasi.ctx,
            table: &mut self.table,
        }
    }
}

impl PlatformView for StoreState {
    fn platform(&mut self) -> &mut PlatformCtx {
        &mut self.platform
    }
}
