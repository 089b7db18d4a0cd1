//! `paasm:platform/log`: guest log records go to the host's log, tagged with the service name,
//! with any sensitive value the guest was given masked.

use crate::engine::platform_bindings::log::{Host, Level};

use super::PlatformCtx;

impl Host for PlatformCtx {
    fn log(&mut self, level: Level, message: String) -> wasmtime::Result<()> {
        let message = self.mask(message);
        let name = &self.host.name;
        match level {
            Level::Trace => tracing::trace!(target: "guest", component = %name, "{message}"),
            Level::Debug => tracing::debug!(target: "guest", component = %name, "{message}"),
            Level::Info => tracing::info!(target: "guest", component = %name, "{message}"),
            Level::Warn => tracing::warn!(target: "guest", component = %name, "{message}"),
            Level::Error => tracing::error!(target: "guest", component = %name, "{message}"),
        }
        Ok(())
    }
}
