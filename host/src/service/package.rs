//! Service packages: a directory with a `service.toml` naming a service's components, its
//! configuration annexes and script overrides. What the seed's registries (`mservices.py`,
//! `aservices.py`) said in code is this data.
//!
//! ```toml
//! name = "helloworld"
//! version = "0.1.0"
//! description = "..."
//!
//! icon = "icon.svg"                     # optional, shown in the catalogue
//!
//! [manager]
//! component = "helloworld-manager.wasm"
//! digest = "sha256:<64 hex digits>"      # written by `cargo xtask build-guests`; required to install
//! config = "helloworld-manager.cfg"    # optional annex, replaces config/manager/<name>-manager.cfg
//! start = "helloworld-manager-start"   # optional, replaces the default start script
//!
//! [agent]
//! component = "helloworld-agent.wasm"
//! roles = ["helloworld"]               # optional, default [name]; the first is the default
//! ```
//!
//! Every path is relative to the package directory and must stay inside it. A services
//! directory holds one package per subdirectory, named after the service.

use std::path::{Component, Path, PathBuf};

use serde::Deserialize;

use crate::iaas::context::{ConfigTree, Overrides, Role};

/// The manifest file of a package.
pub const MANIFEST: &str = "service.toml";

/// Why a package cannot be used.
#[derive(Debug, thiserror::Error)]
pub enum PackageError {
    #[error("unknown service {name:?}: no {MANIFEST} in {dir} (installed: {installed})")]
    Unknown {
        name: String,
        dir: String,
        installed: String,
    },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid {path}: {message}")]
    Invalid { path: String, message: String },
    #[error(
        "the {role} component {file} does not match its manifest: expected {expected}, found {found}"
    )]
    Digest {
        role: &'static str,
        file: String,
        expected: String,
        found: String,
    },
    #[error(
        "the manifest gives no digest for the {role} component: packages are installed only with the sha256 of each component (`digest = \"sha256:...\"`)"
    )]
    NoDigest { role: &'static str },
    #[error("the {role} component {file} does not load: {message}")]
    Component {
        role: &'static str,
        file: String,
        message: String,
    },
    #[error("cannot install into {dir}: {source}")]
    Install { dir: String, source: std::io::Error },
}

/// The files of one role (manager or agent) in a package.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct RoleManifest {
    component: String,
    digest: Option<String>,
    config: Option<String>,
    start: Option<String>,
    #[serde(default)]
    roles: Vec<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(deny_unknown_fields)]
struct Manifest {
    name: String,
    version: String,
    #[serde(default)]
    description: String,
    icon: Option<String>,
    manager: RoleManifest,
    agent: RoleManifest,
}

/// One role's files, resolved to paths inside the package.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RoleFiles {
    pub component: PathBuf,
    /// `sha256:<hex>` of the component, when the manifest gives it.
    pub digest: Option<String>,
    /// An annex replacing the configuration tree's `<name>-<role>.cfg`.
    pub config: Option<PathBuf>,
    /// A start script replacing the configuration tree's start script.
    pub start: Option<PathBuf>,
}

/// A service package that passed its checks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServicePackage {
    pub dir: PathBuf,
    pub name: String,
    pub version: String,
    pub description: String,
    /// An image for the catalogue.
    pub icon: Option<PathBuf>,
    pub manager: RoleFiles,
    pub agent: RoleFiles,
    /// The roles agent nodes play, the default first; never empty.
    pub roles: Vec<String>,
}

impl ServicePackage {
    /// Reads and checks the package in `dir`: the manifest's fields, names, and that every
    /// file it names exists inside the package.
    pub fn load(dir: &Path) -> Result<Self, PackageError> {
        let path = dir.join(MANIFEST);
        let display = path.display().to_string();
        let text = std::fs::read_to_string(&path).map_err(|source| PackageError::Read {
            path: display.clone(),
            source,
        })?;
        let invalid = |message: String| PackageError::Invalid {
            path: display.clone(),
            message,
        };
        let manifest: Manifest = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        check_name("name", &manifest.name).map_err(&invalid)?;
        if manifest.version.trim().is_empty() {
            return Err(invalid("\"version\" must not be empty".into()));
        }
        if !manifest.manager.roles.is_empty() {
            return Err(invalid(
                "\"roles\" belongs in [agent]: the roles agent nodes play".into(),
            ));
        }
        let file = |key: String, value: &str| -> Result<PathBuf, PackageError> {
            let relative = Path::new(value);
            if value.is_empty()
                || relative
                    .components()
                    .any(|c| !matches!(c, Component::Normal(_)))
            {
                return Err(invalid(format!(
                    "\"{key}\" must be a relative path inside the package, found {value:?}"
                )));
            }
            let full = dir.join(relative);
            if !full.is_file() {
                return Err(invalid(format!(
                    "\"{key}\" names {value:?}, which is not a file in {}",
                    dir.display()
                )));
            }
            Ok(full)
        };
        let role_files = |role: &str, m: &RoleManifest| -> Result<RoleFiles, PackageError> {
            if let Some(d) = &m.digest {
                let hex = d.strip_prefix("sha256:").unwrap_or_default();
                if hex.len() != 64 || !hex.bytes().all(|b| b.is_ascii_hexdigit()) {
                    return Err(invalid(format!(
                        "\"{role}.digest\" must be \"sha256:\" and 64 hex digits, found {d:?}"
                    )));
                }
            }
            Ok(RoleFiles {
                component: file(format!("{role}.component"), &m.component)?,
                digest: m.digest.as_ref().map(|d| d.to_ascii_lowercase()),
                config: m
                    .config
                    .as_deref()
                    .map(|v| file(format!("{role}.config"), v))
                    .transpose()?,
                start: m
                    .start
                    .as_deref()
                    .map(|v| file(format!("{role}.start"), v))
                    .transpose()?,
            })
        };
        let manager = role_files("manager", &manifest.manager)?;
        let agent = role_files("agent", &manifest.agent)?;
        let roles = if manifest.agent.roles.is_empty() {
            vec![manifest.name.clone()]
        } else {
            manifest.agent.roles.clone()
        };
        for role in &roles {
            check_name("agent.roles", role).map_err(&invalid)?;
        }
        let icon = manifest
            .icon
            .as_deref()
            .map(|v| file("icon".into(), v))
            .transpose()?;
        Ok(Self {
            dir: dir.to_path_buf(),
            name: manifest.name,
            version: manifest.version,
            description: manifest.description,
            icon,
            manager,
            agent,
            roles,
        })
    }

    /// The package of service `name` in the services directory `services`.
    pub fn find(services: &Path, name: &str) -> Result<Self, PackageError> {
        let dir = services.join(name);
        if check_name("service", name).is_err() || !dir.join(MANIFEST).is_file() {
            return Err(PackageError::Unknown {
                name: name.to_string(),
                dir: services.display().to_string(),
                installed: match installed(services).as_slice() {
                    [] => "none".into(),
                    names => names.join(", "),
                },
            });
        }
        let package = Self::load(&dir)?;
        if package.name != name {
            return Err(PackageError::Invalid {
                path: dir.join(MANIFEST).display().to_string(),
                message: format!(
                    "the package is named {:?} but installed as {name:?}",
                    package.name
                ),
            });
        }
        Ok(package)
    }

    /// The default role of agent nodes.
    pub fn default_role(&self) -> &str {
        &self.roles[0]
    }

    /// The configuration tree rooted at `root` with this package's own annexes and start
    /// scripts in place of the tree's, for both roles: what its nodes are contextualized from.
    pub fn config_tree(&self, root: &Path) -> Result<ConfigTree, PackageError> {
        let read = |path: &Option<PathBuf>| -> Result<Option<String>, PackageError> {
            path.as_ref()
                .map(|p| {
                    std::fs::read_to_string(p).map_err(|source| PackageError::Read {
                        path: p.display().to_string(),
                        source,
                    })
                })
                .transpose()
        };
        let overrides = |files: &RoleFiles| -> Result<Overrides, PackageError> {
            Ok(Overrides {
                annex: read(&files.config)?,
                start: read(&files.start)?,
            })
        };
        Ok(ConfigTree::new(root)
            .with_overrides(Role::Manager, overrides(&self.manager)?)
            .with_overrides(Role::Agent, overrides(&self.agent)?))
    }
}

impl RoleFiles {
    /// The component's bytes, checked against the digest the manifest gives: what is loaded
    /// or served is exactly what was installed. A role without a digest is read unchecked.
    pub fn read_verified(&self, role: &'static str) -> Result<Vec<u8>, PackageError> {
        let bytes = std::fs::read(&self.component).map_err(|source| PackageError::Read {
            path: self.component.display().to_string(),
            source,
        })?;
        if let Some(expected) = &self.digest {
            let found = format!("sha256:{}", crate::engine::digest(&bytes));
            if &found != expected {
                return Err(PackageError::Digest {
                    role,
                    file: self.component.display().to_string(),
                    expected: expected.clone(),
                    found,
                });
            }
        }
        Ok(bytes)
    }
}

/// Checks each component against the digest its manifest gives (roles without one pass).
pub fn verify(package: &ServicePackage) -> Result<(), PackageError> {
    for (role, files) in [("manager", &package.manager), ("agent", &package.agent)] {
        files.read_verified(role)?;
    }
    Ok(())
}

/// Where an installed package came from, when it was installed from a registry: written as
/// [`ORIGIN`] in the installed package's directory.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Origin {
    /// The reference it was installed from (`registry/repository:tag` or `@sha256:...`).
    pub reference: String,
    /// The digest of the artifact's manifest.
    pub digest: String,
    /// The id of the publisher key whose signature was verified, if any.
    pub signer: Option<String>,
}

/// The file recording an installed package's [`Origin`].
pub const ORIGIN: &str = ".origin.toml";

impl ServicePackage {
    /// Where the package was installed from, when it came from a registry.
    pub fn origin(&self) -> Option<Origin> {
        let text = std::fs::read_to_string(self.dir.join(ORIGIN)).ok()?;
        toml::from_str(&text).ok()
    }
}

/// Installs the package at `src` into `services/<name>`: both digests must be given and
/// match, and both components must load (compile and link against what paasm provides).
/// The copy is made beside the destination and renamed into place, replacing an installed
/// version only once it is complete; on any error nothing is changed. `origin` is recorded
/// in the copy (a package installed from a directory records none, whatever the directory
/// holds).
pub fn install(
    src: &Path,
    services: &Path,
    runtime: &crate::engine::Runtime,
    origin: Option<&Origin>,
) -> Result<ServicePackage, PackageError> {
    let package = ServicePackage::load(src)?;
    for (role, files) in [("manager", &package.manager), ("agent", &package.agent)] {
        if files.digest.is_none() {
            return Err(PackageError::NoDigest { role });
        }
    }
    verify(&package)?;
    for (role, files) in [("manager", &package.manager), ("agent", &package.agent)] {
        let file = files.component.display().to_string();
        let bytes = std::fs::read(&files.component).map_err(|source| PackageError::Read {
            path: file.clone(),
            source,
        })?;
        let name = format!("{}-{role}", package.name);
        let fail = |message: String| PackageError::Component {
            role,
            file: file.clone(),
            message,
        };
        let state =
            crate::platform::StateStore::in_memory(&name).map_err(|e| fail(format!("{e:#}")))?;
        let host = std::sync::Arc::new(crate::platform::PlatformHost::new(
            name.clone(),
            std::sync::Arc::new(crate::config::IniConfig::default()),
            state,
        ));
        runtime
            .load(
                &name,
                &bytes,
                host,
                crate::engine::CallLimits::default(),
                crate::engine::InstancePolicy::Fresh,
            )
            .map_err(|e| fail(format!("{e:#}")))?;
    }
    let io = |source: std::io::Error| PackageError::Install {
        dir: services.display().to_string(),
        source,
    };
    std::fs::create_dir_all(services).map_err(io)?;
    let staging = tempfile::Builder::new()
        .prefix(&format!(".{}-", package.name))
        .tempdir_in(services)
        .map_err(io)?;
    copy_dir(src, staging.path()).map_err(io)?;
    let origin_file = staging.path().join(ORIGIN);
    match origin {
        Some(origin) => {
            let text = toml::to_string(origin).expect("an origin serializes");
            std::fs::write(&origin_file, text).map_err(io)?;
        }
        None => {
            if let Err(e) = std::fs::remove_file(&origin_file)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                return Err(io(e));
            }
        }
    }
    let dest = services.join(&package.name);
    let old = services.join(format!(".{}-old", package.name));
    let _ = std::fs::remove_dir_all(&old);
    if dest.exists() {
        std::fs::rename(&dest, &old).map_err(io)?;
    }
    let staged = staging.keep();
    if let Err(e) = std::fs::rename(&staged, &dest) {
        let _ = std::fs::rename(&old, &dest);
        let _ = std::fs::remove_dir_all(&staged);
        return Err(io(e));
    }
    let _ = std::fs::remove_dir_all(&old);
    ServicePackage::load(&dest)
}

fn copy_dir(from: &Path, to: &Path) -> std::io::Result<()> {
    std::fs::create_dir_all(to)?;
    for entry in std::fs::read_dir(from)? {
        let entry = entry?;
        let dest = to.join(entry.file_name());
        let kind = entry.file_type()?;
        if kind.is_dir() {
            copy_dir(&entry.path(), &dest)?;
        } else if kind.is_file() {
            std::fs::copy(entry.path(), dest)?;
        }
    }
    Ok(())
}

/// One installed service type, as the catalogue lists it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct CatalogueEntry {
    pub name: String,
    pub version: String,
    pub description: String,
    /// The package's icon as a `data:` URL.
    pub icon: Option<String>,
    /// The reference it was installed from, when it came from a registry.
    pub source: Option<String>,
    /// The digest of its artifact's manifest, when it came from a registry.
    pub digest: Option<String>,
    /// The id of the key whose signature was verified at install, if any.
    pub signer: Option<String>,
}

/// The packages of a services directory, by name, and a message for each broken one.
pub fn catalogue(services: &Path) -> (Vec<CatalogueEntry>, Vec<String>) {
    use base64::Engine as _;
    let mut entries = Vec::new();
    let mut problems = Vec::new();
    for name in installed(services) {
        match ServicePackage::find(services, &name) {
            Ok(p) => {
                let icon = p.icon.as_ref().and_then(|path| {
                    let bytes = std::fs::read(path).ok()?;
                    let mime = match path.extension().and_then(|e| e.to_str()) {
                        Some("svg") => "image/svg+xml",
                        Some("png") => "image/png",
                        Some("jpg" | "jpeg") => "image/jpeg",
                        _ => "application/octet-stream",
                    };
                    Some(format!(
                        "data:{mime};base64,{}",
                        base64::engine::general_purpose::STANDARD.encode(bytes)
                    ))
                });
                let origin = p.origin();
                entries.push(CatalogueEntry {
                    source: origin.as_ref().map(|o| o.reference.clone()),
                    digest: origin.as_ref().map(|o| o.digest.clone()),
                    signer: origin.and_then(|o| o.signer),
                    name: p.name,
                    version: p.version,
                    description: p.description,
                    icon,
                });
            }
            Err(e) => problems.push(e.to_string()),
        }
    }
    (entries, problems)
}

/// The names of the packages in a services directory, sorted.
pub fn installed(services: &Path) -> Vec<String> {
    let mut names: Vec<String> = std::fs::read_dir(services)
        .into_iter()
        .flatten()
        .flatten()
        .filter(|e| e.path().join(MANIFEST).is_file())
        .filter(|e| !e.file_name().to_string_lossy().starts_with('.'))
        .filter_map(|e| e.file_name().to_str().map(str::to_string))
        .collect();
    names.sort();
    names
}

fn check_name(key: &str, name: &str) -> Result<(), String> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(format!(
            "\"{key}\" must be letters, digits, '-' and '_', found {name:?}"
        ))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn package(dir: &Path, manifest: &str, files: &[&str]) {
        std::fs::create_dir_all(dir).unwrap();
        std::fs::write(dir.join(MANIFEST), manifest).unwrap();
        for f in files {
            std::fs::write(dir.join(f), b"").unwrap();
        }
    }

    const HELLO: &str = "name = \"hello\"\nversion = \"1.0\"\n[manager]\ncomponent = \"m.wasm\"\n[agent]\ncomponent = \"a.wasm\"\nstart = \"a-start\"\n";

    #[test]
    fn a_package_resolves_its_files_and_default_role() {
        let tmp = tempfile::tempdir().unwrap();
        let dir = tmp.path().join("hello");
        package(&dir, HELLO, &["m.wasm", "a.wasm", "a-start"]);
        let p = ServicePackage::find(tmp.path(), "hello").unwrap();
        assert_eq!(p.manager.component, dir.join("m.wasm"));
        assert_eq!(p.agent.start, Some(dir.join("a-start")));
        assert_eq!(p.agent.config, None);
        assert_eq!(p.roles, ["hello"]);
        assert_eq!(installed(tmp.path()), ["hello"]);
    }

    #[test]
    fn bad_packages_are_named() {
        let tmp = tempfile::tempdir().unwrap();
        let err = ServicePackage::find(tmp.path(), "nope").unwrap_err();
        assert!(
            err.to_string().contains("unknown service \"nope\""),
            "{err}"
        );
        assert!(err.to_string().contains("installed: none"), "{err}");

        let dir = tmp.path().join("hello");
        package(&dir, HELLO, &["m.wasm", "a.wasm"]);
        let err = ServicePackage::find(tmp.path(), "hello").unwrap_err();
        assert!(
            err.to_string()
                .contains("\"agent.start\" names \"a-start\""),
            "{err}"
        );

        package(&dir, &HELLO.replace("a-start", "../a-start"), &[]);
        let err = ServicePackage::find(tmp.path(), "hello").unwrap_err();
        assert!(err.to_string().contains("inside the package"), "{err}");

        package(&dir, &HELLO.replace("version", "versoin"), &[]);
        let err = ServicePackage::find(tmp.path(), "hello").unwrap_err();
        assert!(err.to_string().contains("versoin"), "{err}");

        package(
            &dir,
            &HELLO.replace("name = \"hello\"", "name = \"other\""),
            &["a-start"],
        );
        let err = ServicePackage::find(tmp.path(), "hello").unwrap_err();
        assert!(err.to_string().contains("installed as \"hello\""), "{err}");
    }
}
