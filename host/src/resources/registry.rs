//! The resources configuration: which implementations are installed, and for each logical
//! resource the one active implementation with its config attributes (the seed's config
//! file), in TOML:
//!
//! ```toml
//! [implementations]              # installed: physical name = component file
//! unix_home = "account.wasm"
//! nginx_vhost = "nginx-vhost.wasm"
//! apache_vhost = "apache-vhost.wasm"
//!
//! [resources.account]            # logical name
//! implementation = "unix_home"   # the active implementation
//! grants = ["${DATA}/homes"]     # directories the implementation may use
//! config = { homes = "${DATA}/homes" }
//! # offline = true               # queue operations (default: the implementation's Offline)
//!
//! [resources.hosting]
//! implementation = "nginx_vhost"
//! grants = ["${DATA}/nginx"]
//! config = { vhostsdir = "${DATA}/nginx/sites", logsdir = "${DATA}/nginx/logs", suspendskeleton = "${DATA}/nginx/suspended" }
//! ```
//!
//! Component paths are relative to the components directory; `${DATA}` in any string is the
//! data directory. Loading checks everything at once: every installed component must be a
//! provider describing itself under the physical name it is installed as; every resource
//! names an installed implementation of that very resource; no two resources activate
//! implementations of one logical name; parents are configured; config attributes pass the
//! implementation's config schema.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use anyhow::{Context, Result, bail};
use serde::Deserialize;

use super::component::ComponentImplementation;
use super::engine::Active;
use super::implementation::Implementation;
use super::params::Params;
use crate::config::IniConfig;
use crate::engine::provider::ProviderGuest;
use crate::engine::{CallLimits, InstancePolicy, Runtime};
use crate::platform::{PlatformHost, StateStore};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    implementations: BTreeMap<String, String>,
    #[serde(default)]
    resources: BTreeMap<String, ResourceEntry>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ResourceEntry {
    implementation: String,
    #[serde(default)]
    grants: Vec<String>,
    #[serde(default)]
    config: BTreeMap<String, toml::Value>,
    /// Queue this resource's operations and run them in the background, whatever the
    /// implementation's `Offline` attribute says.
    offline: Option<bool>,
}

/// Where the registry finds things.
pub struct Locations<'a> {
    pub components: &'a Path,
    pub data: &'a Path,
}

fn expand(text: &str, data: &Path) -> String {
    text.replace("${DATA}", &data.display().to_string())
}

fn attribute(value: &toml::Value) -> Option<String> {
    match value {
        toml::Value::String(s) => Some(s.clone()),
        toml::Value::Integer(i) => Some(i.to_string()),
        toml::Value::Boolean(b) => Some(b.to_string()),
        toml::Value::Float(f) => Some(f.to_string()),
        _ => None,
    }
}

async fn load_component(
    runtime: &Runtime,
    path: &Path,
    name: &str,
    grants: Vec<PathBuf>,
    state_dir: &Path,
) -> Result<Arc<ComponentImplementation>> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let state = StateStore::open(&state_dir.join("provider-state.sqlite"), name)?;
    let mut host = PlatformHost::new(name, Arc::new(IniConfig::default()), state);
    host.grants = grants;
    let guest = runtime.load(
        name,
        &bytes,
        Arc::new(host),
        CallLimits::default(),
        InstancePolicy::Fresh,
    )?;
    let provider = ProviderGuest::new(Arc::new(guest))?;
    ComponentImplementation::load(provider).await
}

/// Reads the configuration at `path`, loads and checks every implementation; the active
/// implementation of each resource with its config attributes.
pub async fn load(
    path: &Path,
    runtime: &Runtime,
    at: &Locations<'_>,
) -> Result<BTreeMap<String, Active>> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read resources configuration {}", path.display()))?;
    let file: File = toml::from_str(&text)
        .map_err(|e| anyhow::anyhow!("invalid resources configuration {}: {e}", path.display()))?;
    std::fs::create_dir_all(at.data)
        .with_context(|| format!("cannot create the data directory {}", at.data.display()))?;
    let mut errors: Vec<String> = Vec::new();

    // Every installed implementation, described.
    let mut installed: BTreeMap<String, Arc<ComponentImplementation>> = BTreeMap::new();
    for (physical, component) in &file.implementations {
        let component_path = at.components.join(component);
        match load_component(runtime, &component_path, physical, Vec::new(), at.data).await {
            Ok(imp) if imp.description().physical == *physical => {
                installed.insert(physical.clone(), imp);
            }
            Ok(imp) => errors.push(format!(
                "implementation {physical:?}: {} describes itself as {:?}",
                component_path.display(),
                imp.description().physical
            )),
            Err(e) => errors.push(format!("implementation {physical:?}: {e:#}")),
        }
    }

    let mut active: BTreeMap<String, Active> = BTreeMap::new();
    let mut activated_by: BTreeMap<String, (String, String)> = BTreeMap::new();
    for (name, entry) in &file.resources {
        let Some(described) = installed.get(&entry.implementation) else {
            if !file.implementations.contains_key(&entry.implementation) {
                errors.push(format!(
                    "resource {name:?}: unknown implementation {:?}; installed: {}",
                    entry.implementation,
                    file.implementations
                        .keys()
                        .cloned()
                        .collect::<Vec<_>>()
                        .join(", ")
                ));
            }
            continue;
        };
        let d = described.description();
        if d.resource != *name {
            errors.push(format!(
                "resource {name:?}: implementation {:?} implements {:?}, not {name:?}",
                entry.implementation, d.resource
            ));
            continue;
        }
        if let Some((other_table, other_impl)) = activated_by.get(&d.resource) {
            errors.push(format!(
                "resource {:?} has two active implementations: {other_impl:?} (in [resources.{other_table}]) and {:?} (in [resources.{name}]); activate one",
                d.resource, entry.implementation
            ));
            continue;
        }
        activated_by.insert(
            d.resource.clone(),
            (name.clone(), entry.implementation.clone()),
        );
        let mut attrs = Params::new();
        for (key, value) in &entry.config {
            match attribute(value) {
                Some(text) => {
                    attrs.set(key.clone(), expand(&text, at.data));
                }
                None => errors.push(format!(
                    "resource {name:?}: config attribute {key:?} must be a string, number or boolean"
                )),
            }
        }
        let config = match d.config.check_config(&attrs) {
            Ok(config) => config,
            Err(problems) => {
                for p in problems.iter() {
                    errors.push(format!("resource {name:?}: config attribute {p}"));
                }
                continue;
            }
        };
        let grants: Vec<PathBuf> = entry
            .grants
            .iter()
            .map(|g| PathBuf::from(expand(g, at.data)))
            .collect();
        for g in &grants {
            if let Err(e) = std::fs::create_dir_all(g) {
                errors.push(format!(
                    "resource {name:?}: cannot create granted directory {}: {e}",
                    g.display()
                ));
            }
        }
        let component_path = at
            .components
            .join(&file.implementations[&entry.implementation]);
        match load_component(
            runtime,
            &component_path,
            &entry.implementation,
            grants,
            at.data,
        )
        .await
        {
            Ok(imp) => {
                let offline = entry.offline.unwrap_or(imp.description().offline);
                active.insert(
                    name.clone(),
                    Active {
                        implementation: imp,
                        config,
                        offline,
                    },
                );
            }
            Err(e) => errors.push(format!("resource {name:?}: {e:#}")),
        }
    }
    for (name, a) in &active {
        if let Some(parent) = &a.implementation.description().parent
            && !active.contains_key(parent)
        {
            errors.push(format!(
                "resource {name:?} is a child of {parent:?}, which is not configured"
            ));
        }
    }
    if !errors.is_empty() {
        bail!(
            "invalid resources configuration {}:\n  {}",
            path.display(),
            errors.join("\n  ")
        );
    }
    Ok(active)
}
