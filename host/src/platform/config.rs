//! `paasm:platform/config`: read access to the service's merged configuration.

use crate::engine::platform_bindings::config::Host;

use super::PlatformCtx;

impl Host for PlatformCtx {
    fn get(&mut self, section: String, key: String) -> wasmtime::Result<Option<String>> {
        Ok(self.host.config.get(&section, &key).map(str::to_string))
    }

    fn section(&mut self, section: String) -> wasmtime::Result<Vec<(String, String)>> {
        Ok(self.host.config.section(&section))
    }

    fn sections(&mut self) -> wasmtime::Result<Vec<String>> {
        Ok(self.host.config.section_names())
    }
}
