//! Service roles: what a node runs. The agent role serves one agent component; the manager
//! role (lifecycle, nodes, billing) builds on the same pieces, starting with the standard
//! lifecycle in `state`.
//!
//! Settings common to every role live here: the `[wasm]` section of a role's configuration
//! file, which sets the limits and instance policy of its component.

pub mod agent;
pub mod manager;
pub mod package;
pub mod state;
pub mod store;

use std::path::Path;
use std::time::Duration;

use crate::config::IniConfig;
use crate::engine::{CallLimits, InstancePolicy};

/// Reads a role's configuration file and checks the variables the seed requires, answering
/// every message the seed printed (`Failed to find configuration file ...`, `Missing
/// configuration section ...`, `Missing configuration variable ...`).
pub fn read_required(path: &Path, required: &[(&str, &[&str])]) -> Result<IniConfig, Vec<String>> {
    if !path.is_file() {
        return Err(vec![format!(
            "Failed to find configuration file {}",
            path.display()
        )]);
    }
    let ini = IniConfig::load(path).map_err(|e| vec![e.to_string()])?;
    let missing: Vec<String> = ini
        .missing(required)
        .iter()
        .map(|m| m.to_string())
        .collect();
    if !missing.is_empty() {
        return Err(missing);
    }
    Ok(ini)
}

/// The configuration section with the component's limits and instance policy.
pub const WASM_SECTION: &str = "wasm";

/// Limits and instance policy read from the `[wasm]` section.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct WasmSettings {
    pub limits: CallLimits,
    pub policy: InstancePolicy,
}

/// Reads the `[wasm]` section (every key optional):
///
/// ```ini
/// [wasm]
/// CALL_TIMEOUT_MS = 10000    ; deadline of one call, instantiation included
/// MEMORY_LIMIT_MB = 64       ; all linear memories of the guest together
/// INSTANCES = fresh          ; fresh (a new instance per call) or reuse (warm instances)
/// REUSE_MAX_CALLS = 1000     ; with reuse: calls an instance serves before it is replaced
/// ```
///
/// Every bad value is reported, each naming its key and the expected form.
pub fn wasm_settings(config: &IniConfig) -> Result<WasmSettings, Vec<String>> {
    let mut errors = Vec::new();
    let mut number = |key: &str, default: u64, max: u64, unit: &str| -> u64 {
        match config.get(WASM_SECTION, key) {
            None => default,
            Some(text) => match text.trim().parse::<u64>() {
                Ok(n) if n > 0 && n <= max => n,
                _ => {
                    errors.push(format!(
                        "invalid value for \"{key}\" in section \"{WASM_SECTION}\": expected a whole number of {unit} from 1 to {max}, found {text:?}"
                    ));
                    default
                }
            },
        }
    };
    let defaults = CallLimits::default();
    let timeout = number(
        "CALL_TIMEOUT_MS",
        defaults.timeout.as_millis() as u64,
        3_600_000,
        "milliseconds",
    );
    let memory = number(
        "MEMORY_LIMIT_MB",
        (defaults.memory >> 20) as u64,
        4096,
        "MiB",
    );
    let max_calls = number("REUSE_MAX_CALLS", 1000, u32::MAX as u64, "calls");
    let policy = match config.get(WASM_SECTION, "INSTANCES") {
        None => InstancePolicy::Fresh,
        Some(text) => InstancePolicy::parse(text, max_calls as u32).unwrap_or_else(|e| {
            errors.push(format!(
                "invalid value for \"INSTANCES\" in section \"{WASM_SECTION}\": {e}"
            ));
            InstancePolicy::Fresh
        }),
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(WasmSettings {
        limits: CallLimits {
            timeout: Duration::from_millis(timeout),
            memory: (memory as usize) << 20,
        },
        policy,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_apply_when_the_section_is_absent() {
        let cfg = IniConfig::parse("[agent]\n").unwrap();
        let settings = wasm_settings(&cfg).unwrap();
        assert_eq!(settings.limits, CallLimits::default());
        assert_eq!(settings.policy, InstancePolicy::Fresh);
    }

    #[test]
    fn every_bad_value_is_named() {
        let cfg = IniConfig::parse(
            "[wasm]\nCALL_TIMEOUT_MS = soon\nMEMORY_LIMIT_MB = 0\nINSTANCES = pooled\n",
        )
        .unwrap();
        let errors = wasm_settings(&cfg).unwrap_err();
        assert_eq!(errors.len(), 3, "{errors:?}");
        assert!(errors[0].contains("\"CALL_TIMEOUT_MS\"") && errors[0].contains("\"soon\""));
        assert!(errors[1].contains("\"MEMORY_LIMIT_MB\""));
        assert!(errors[2].contains("\"INSTANCES\"") && errors[2].contains("fresh"));
    }

    #[test]
    fn reuse_takes_its_bound() {
        let cfg = IniConfig::parse("[wasm]\nINSTANCES = Reuse\nREUSE_MAX_CALLS = 7\n").unwrap();
        assert_eq!(
            wasm_settings(&cfg).unwrap().policy,
            InstancePolicy::Reuse { max_calls: 7 }
        );
    }
}
