//! The manager's configuration: the seed's required variables and their messages, the
//! optional settings with their defaults, and the assembly of a configuration from the
//! configuration tree for `paasm manager --service`.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, Result};

use crate::config::IniConfig;
use crate::iaas::context::{ConfigTree, Role, substitute_dollar, substitute_percent};
use crate::iaas::controller::ControllerOptions;
use crate::service::{WasmSettings, wasm_settings};

/// The sections and variables every manager configuration must have (the seed's v0.9 list).
pub const REQUIRED: &[(&str, &[&str])] = &[
    (
        "manager",
        &[
            "TYPE",
            "BOOTSTRAP",
            "LOG_FILE",
            "FE_CREDIT_URL",
            "FE_TERMINATE_URL",
            "FE_SERVICE_ID",
        ],
    ),
    ("iaas", &["DRIVER"]),
];

/// The manager section.
pub(super) const MANAGER: &str = "manager";
/// The default cloud's section (and name, as in the original: nodes `iaas1`, `iaas2`, ...).
const DEFAULT_CLOUD: &str = "iaas";
/// The cloud drivers this build has.
const DRIVERS: &[&str] = &["local", "netns", "ec2", "opennebula"];

/// The variables each driver needs in its cloud's section (the seed's names).
const DRIVER_KEYS: &[(&str, &[&str])] = &[
    ("ec2", crate::iaas::ec2::REQUIRED),
    ("opennebula", crate::iaas::opennebula::REQUIRED),
];

/// Settings read from the manager's configuration.
#[derive(Debug, Clone)]
pub(super) struct Settings {
    pub(super) service_type: String,
    pub(super) bootstrap: String,
    pub(super) my_ip: String,
    pub(super) log_file: PathBuf,
    pub(super) database: PathBuf,
    pub(super) state_db: PathBuf,
    pub(super) nodes_dir: PathBuf,
    pub(super) controller: ControllerOptions,
    pub(super) agent_timeout: Duration,
    /// Time between two health probes of every node (`NODE_HEALTH_INTERVAL_MS`).
    pub(super) health_interval: Duration,
    pub(super) wasm: WasmSettings,
    /// Cloud name -> driver, the default first.
    pub(super) clouds: Vec<(String, String)>,
    /// Cloud name -> the loopback network of a local cloud (`LOOPBACK_PREFIX`).
    pub(super) prefixes: BTreeMap<String, [u8; 3]>,
    /// Cloud name -> the network of a netns cloud (`NETWORK`).
    pub(super) networks: BTreeMap<String, [u8; 3]>,
    /// Cloud name -> the settings of an ec2 cloud.
    pub(super) ec2: BTreeMap<String, crate::iaas::ec2::Ec2Settings>,
    /// Cloud name -> the settings of an opennebula cloud.
    pub(super) opennebula: BTreeMap<String, crate::iaas::opennebula::OpenNebulaSettings>,
    /// Where node time is charged; `None` without a frontend.
    pub(super) billing: Option<Billing>,
}

/// The frontend's callbacks, as the manager's configuration gives them.
#[derive(Debug, Clone)]
pub(super) struct Billing {
    /// `FE_CREDIT_URL`: `http://HOST:PORT/PATH`.
    pub(super) credit_url: String,
    /// `FE_TERMINATE_URL`.
    pub(super) terminate_url: String,
    /// `FE_SERVICE_ID`.
    pub(super) service_id: String,
    /// `FE_SECRET`: the service's secret, sent as a bearer token.
    pub(super) secret: String,
    /// `CREDIT_PERIOD`: every node costs one credit per started period.
    pub(super) period: Duration,
}

/// Reads and checks a manager configuration; on failure every message, as the seed printed
/// them (the missing variables first, then every invalid value).
pub fn load_config(path: &Path) -> Result<IniConfig, Vec<String>> {
    let ini = crate::service::read_required(path, REQUIRED)?;
    read(&ini)?;
    Ok(ini)
}

pub(super) fn read(ini: &IniConfig) -> Result<Settings, Vec<String>> {
    let mut errors = Vec::new();
    let get = |key: &str| ini.get(MANAGER, key).unwrap_or_default().to_string();
    let mut seconds = |key: &str, default: u64, max: u64| -> Duration {
        match ini.get(MANAGER, key) {
            None => Duration::from_secs(default),
            Some(text) => match text.trim().parse::<u64>() {
                Ok(n) if n > 0 && n <= max => Duration::from_secs(n),
                _ => {
                    errors.push(format!(
                        "invalid value for \"{key}\" in section \"{MANAGER}\": expected a whole number of seconds from 1 to {max}, found {text:?}"
                    ));
                    Duration::from_secs(default)
                }
            },
        }
    };
    let boot_timeout = seconds("NODE_BOOT_TIMEOUT", 180, 24 * 3600);
    let agent_timeout = seconds("AGENT_CALL_TIMEOUT", 30, 3600);
    let mut number = |key: &str, default: u64, max: u64, what: &str| -> u64 {
        match ini.get(MANAGER, key) {
            None => default,
            Some(text) => match text.trim().parse::<u64>() {
                Ok(n) if n > 0 && n <= max => n,
                _ => {
                    errors.push(format!(
                        "invalid value for \"{key}\" in section \"{MANAGER}\": expected {what} from 1 to {max}, found {text:?}"
                    ));
                    default
                }
            },
        }
    };
    let attempts = number("NODE_START_ATTEMPTS", 3, 100, "a number of attempts");
    let agent_port = number("AGENT_PORT", 5555, 65535, "a port number") as u16;
    let poll_ms = number("NODE_POLL_INTERVAL_MS", 500, 60_000, "milliseconds");
    let health_ms = number(
        "NODE_HEALTH_INTERVAL_MS",
        super::health::DEFAULT_INTERVAL.as_millis() as u64,
        3_600_000,
        "milliseconds",
    );
    let credit_period = number("CREDIT_PERIOD", 3600, 366 * 24 * 3600, "seconds");

    let mut clouds = vec![(DEFAULT_CLOUD.to_string(), driver(ini, DEFAULT_CLOUD))];
    if let Some(others) = ini.get(DEFAULT_CLOUD, "OTHER_CLOUDS") {
        // The original split on "," without trimming, silently losing " b" in "a, b".
        for name in others.split(',').map(str::trim).filter(|n| !n.is_empty()) {
            if !ini.has_section(name) {
                errors.push(format!(
                    "Missing configuration section \"{name}\" (named in OTHER_CLOUDS of section \"{DEFAULT_CLOUD}\")"
                ));
                continue;
            }
            if clouds.iter().any(|(n, _)| n == name) {
                errors.push(format!("cloud \"{name}\" is named twice in OTHER_CLOUDS"));
                continue;
            }
            clouds.push((name.to_string(), driver(ini, name)));
        }
    }
    let mut prefixes = BTreeMap::new();
    for (name, _) in &clouds {
        if let Some(text) = ini.get(name, "LOOPBACK_PREFIX") {
            match crate::iaas::local::parse_prefix(text) {
                Ok(prefix) => {
                    prefixes.insert(name.clone(), prefix);
                }
                Err(e) => errors.push(format!(
                    "invalid value for \"LOOPBACK_PREFIX\" in section \"{name}\": {e}"
                )),
            }
        }
    }
    let mut networks = BTreeMap::new();
    for (name, _) in clouds.iter().filter(|(_, d)| d == "netns") {
        if let Some(text) = ini.get(name, "NETWORK") {
            match crate::iaas::netns::parse_network(text) {
                Ok(network) => {
                    networks.insert(name.clone(), network);
                }
                Err(e) => errors.push(format!(
                    "invalid value for \"NETWORK\" in section \"{name}\": {e}"
                )),
            }
        }
    }
    let mut ec2 = BTreeMap::new();
    let mut opennebula = BTreeMap::new();
    for (name, driver) in &clouds {
        let complete = DRIVER_KEYS
            .iter()
            .filter(|(d, _)| d == driver)
            .all(|(_, keys)| {
                keys.iter()
                    .all(|k| ini.get(name, k).is_some_and(|v| !v.trim().is_empty()))
            });
        if driver == "ec2" && complete {
            match crate::iaas::ec2::Ec2Settings::read(ini, name) {
                Ok(s) => {
                    ec2.insert(name.clone(), s);
                }
                Err(e) => errors.extend(e),
            }
        }
        if driver == "opennebula" && complete {
            match crate::iaas::opennebula::OpenNebulaSettings::read(ini, name) {
                Ok(s) => {
                    opennebula.insert(name.clone(), s);
                }
                Err(e) => errors.extend(e),
            }
        }
        for (_, keys) in DRIVER_KEYS.iter().filter(|(d, _)| d == driver) {
            for key in keys.iter() {
                if ini.get(name, key).is_none_or(|v| v.trim().is_empty()) {
                    errors.push(format!(
                        "Missing configuration variable \"{key}\" in section \"{name}\" (the {driver} driver needs it)"
                    ));
                }
            }
        }
        if driver.is_empty() {
            errors.push(format!(
                "Missing configuration variable \"DRIVER\" in section \"{name}\""
            ));
        } else if !DRIVERS.contains(&driver.as_str()) {
            errors.push(format!(
                "invalid value for \"DRIVER\" in section \"{name}\": unknown cloud driver {driver:?}; available drivers: {}",
                DRIVERS.join(", ")
            ));
        }
    }
    let wasm = match wasm_settings(ini) {
        Ok(w) => Some(w),
        Err(e) => {
            errors.extend(e);
            None
        }
    };
    let var_cache = ini
        .get(MANAGER, "VAR_CACHE")
        .filter(|v| !v.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            Path::new(&get("LOG_FILE"))
                .parent()
                .unwrap_or(Path::new("."))
                .to_path_buf()
        });
    let path_or = |key: &str, default: PathBuf| {
        ini.get(MANAGER, key)
            .filter(|v| !v.is_empty())
            .map(PathBuf::from)
            .unwrap_or(default)
    };
    // Billing is on when the frontend's URL is one: a standalone manager says "none".
    let credit_url = get("FE_CREDIT_URL").trim().to_string();
    let billing = if credit_url.starts_with("http://") {
        Some(Billing {
            credit_url,
            terminate_url: get("FE_TERMINATE_URL").trim().to_string(),
            service_id: get("FE_SERVICE_ID").trim().to_string(),
            secret: ini
                .get(MANAGER, "FE_SECRET")
                .unwrap_or_default()
                .trim()
                .to_string(),
            period: Duration::from_secs(credit_period),
        })
    } else {
        if credit_url.starts_with("https://") {
            errors.push(format!(
                "invalid value for \"FE_CREDIT_URL\" in section \"{MANAGER}\": expected http://HOST:PORT/PATH (or none), found {credit_url:?}"
            ));
        }
        None
    };
    if !errors.is_empty() {
        return Err(errors);
    }
    Ok(Settings {
        service_type: get("TYPE"),
        bootstrap: get("BOOTSTRAP").trim_end_matches('/').to_string(),
        my_ip: ini
            .get(MANAGER, "MY_IP")
            .filter(|v| !v.is_empty())
            .unwrap_or("127.0.0.1")
            .to_string(),
        log_file: PathBuf::from(get("LOG_FILE")),
        database: path_or("DATABASE", var_cache.join("paasm-manager.sqlite")),
        state_db: path_or("STATE_DB", var_cache.join("paasm-state.sqlite")),
        nodes_dir: path_or("NODES_DIR", var_cache.join("nodes")),
        controller: ControllerOptions {
            agent_port,
            boot_timeout,
            poll_interval: Duration::from_millis(poll_ms),
            max_attempts: attempts as u32,
        },
        agent_timeout,
        health_interval: Duration::from_millis(health_ms),
        wasm: wasm.expect("no errors"),
        clouds,
        prefixes,
        networks,
        ec2,
        opennebula,
        billing,
    })
}

fn driver(ini: &IniConfig, section: &str) -> String {
    ini.get(section, "DRIVER")
        .unwrap_or_default()
        .trim()
        .to_ascii_lowercase()
}

/// Assembles the configuration of a manager for `name` on `cloud` from the configuration
/// tree, as a frontend would (`%VAR%` layer), with the values the boot script would give the
/// shell variables (`$VAR` layer), and writes it to `<var>/config.cfg`. Returns its path.
pub fn assemble_config(
    tree: &ConfigTree,
    name: &str,
    cloud: &str,
    var: &Path,
    url: &str,
    ip: &str,
) -> Result<PathBuf> {
    let text = tree
        .config(Role::Manager, name, cloud)
        .with_context(|| format!("cannot assemble the manager configuration of {name}"))?;
    let percent: BTreeMap<String, String> = [
        ("CONPAAS_SERVICE_TYPE", name),
        ("CONPAAS_SERVICE_ID", "1"),
        ("CLOUD", cloud),
        // No frontend: credits are not reported anywhere.
        ("FRONTEND_URL", "none"),
        ("LOOPBACK_PREFIX", "127.0.0"),
        ("FRONTEND_SECRET", "none"),
        ("CREDIT_PERIOD", "3600"),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    let var = std::path::absolute(var).context("cannot resolve the VAR directory")?;
    let dollar: BTreeMap<String, String> = [
        ("SOURCE", url.to_string()),
        ("IP_PUBLIC", ip.to_string()),
        ("ROOT_DIR", var.display().to_string()),
        ("CPS_HOME", var.join("paasm").display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v))
    .collect();
    let text = substitute_dollar(&substitute_percent(&text, &percent), &dollar);
    std::fs::create_dir_all(&var).with_context(|| format!("cannot create {}", var.display()))?;
    let path = var.join("config.cfg");
    std::fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}
