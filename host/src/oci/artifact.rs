//! A package as an OCI artifact, following the conventions for Wasm artifacts: an image
//! manifest with `artifactType` [`ARTIFACT_TYPE`], a config blob of [`CONFIG_MEDIA_TYPE`]
//! describing the package (its kind, name, version and every file with its path and
//! digest), each component a layer of media type `application/wasm` and every other file
//! (`service.toml`, configuration annexes, scripts, icons) a layer of [`FILE_MEDIA_TYPE`], each
//! layer's path in the `org.opencontainers.image.title` annotation.
//!
//! A pull checks every blob against its descriptor's sha256 and the config's list, refuses
//! paths that leave the package, and writes the directory only once everything arrived.

use std::collections::BTreeMap;
use std::path::{Component, Path, PathBuf};

use oci_client::Reference;
use oci_client::manifest::{OCI_IMAGE_MEDIA_TYPE, OciDescriptor, OciImageManifest};
use serde::{Deserialize, Serialize};

use super::{OciError, Session, sha256};
use crate::service::package::{MANIFEST, ServicePackage};

/// The `artifactType` of a package's manifest.
pub const ARTIFACT_TYPE: &str = "application/vnd.paasm.package.v1";
/// The media type of a package's config blob.
pub const CONFIG_MEDIA_TYPE: &str = "application/vnd.paasm.package.config.v1+json";
/// The media type of a component layer.
pub const WASM_MEDIA_TYPE: &str = "application/wasm";
/// The media type of every other file of a package.
pub const FILE_MEDIA_TYPE: &str = "application/vnd.paasm.package.file.v1";
/// The annotation naming a layer's path in the package.
pub const TITLE: &str = "org.opencontainers.image.title";

/// What a package is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Kind {
    /// A service package (`service.toml`, a manager and an agent component, annexes).
    Service,
    /// A resource provider: components (and their files) without a `service.toml`.
    Provider,
}

/// One file of a package, as the config blob lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileEntry {
    pub path: String,
    pub digest: String,
    pub size: u64,
}

/// The config blob: what the package is and what it holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PackageConfig {
    pub kind: Kind,
    pub name: String,
    pub version: String,
    pub files: Vec<FileEntry>,
}

/// A package read from a directory, ready to push.
struct Contents {
    config: PackageConfig,
    /// The files' bytes, in the config's order.
    data: Vec<Vec<u8>>,
}

/// Reads the package in `dir`: a service package is loaded and its components checked
/// against their digests first; without a `service.toml` the directory is a resource
/// provider, named after the directory, and must hold a component.
fn read_dir(dir: &Path) -> Result<Contents, OciError> {
    let file_error = |path: &Path, message: String| OciError::File {
        path: path.display().to_string(),
        message,
    };
    let (kind, name, version) = if dir.join(MANIFEST).is_file() {
        let package = ServicePackage::load(dir)?;
        crate::service::package::verify(&package)?;
        (Kind::Service, package.name, package.version)
    } else {
        let name = dir
            .canonicalize()
            .ok()
            .and_then(|d| d.file_name().map(|n| n.to_string_lossy().into_owned()))
            .unwrap_or_default();
        (Kind::Provider, name, "0.0.0".to_string())
    };
    let mut paths = Vec::new();
    walk(dir, Path::new(""), &mut paths).map_err(|e| file_error(dir, e.to_string()))?;
    paths.sort();
    if kind == Kind::Provider && !paths.iter().any(|p| p.extension() == Some("wasm".as_ref())) {
        return Err(file_error(
            dir,
            format!(
                "neither a service package (no {MANIFEST}) nor a resource provider (no .wasm component)"
            ),
        ));
    }
    let mut files = Vec::new();
    let mut data = Vec::new();
    for path in paths {
        let full = dir.join(&path);
        let bytes = std::fs::read(&full).map_err(|e| file_error(&full, e.to_string()))?;
        files.push(FileEntry {
            path: path
                .components()
                .map(|c| c.as_os_str().to_string_lossy())
                .collect::<Vec<_>>()
                .join("/"),
            digest: sha256(&bytes),
            size: bytes.len() as u64,
        });
        data.push(bytes);
    }
    Ok(Contents {
        config: PackageConfig {
            kind,
            name,
            version,
            files,
        },
        data,
    })
}

/// The regular files under `dir`, relative, skipping hidden ones (like an installed
/// package's origin record).
fn walk(dir: &Path, prefix: &Path, out: &mut Vec<PathBuf>) -> std::io::Result<()> {
    for entry in std::fs::read_dir(dir.join(prefix))? {
        let entry = entry?;
        let name = entry.file_name();
        if name.to_string_lossy().starts_with('.') {
            continue;
        }
        let relative = prefix.join(&name);
        let kind = entry.file_type()?;
        if kind.is_dir() {
            walk(dir, &relative, out)?;
        } else if kind.is_file() {
            out.push(relative);
        }
    }
    Ok(())
}

fn descriptor(media_type: &str, bytes: &[u8], title: Option<&str>) -> OciDescriptor {
    OciDescriptor {
        media_type: media_type.to_string(),
        digest: sha256(bytes),
        size: bytes.len() as i64,
        urls: None,
        annotations: title.map(|t| BTreeMap::from([(TITLE.to_string(), t.to_string())])),
    }
}

/// Serializes a manifest (or index): the bytes pushed, whose digest names it.
pub(super) fn manifest_bytes(value: &impl Serialize) -> Vec<u8> {
    serde_json::to_vec(value).expect("a manifest serializes")
}

/// What a push published.
#[derive(Debug, Clone)]
pub struct Pushed {
    pub config: PackageConfig,
    /// The digest of the manifest: `REPOSITORY@DIGEST` names exactly this package.
    pub digest: String,
}

/// Publishes the package in `dir` at `reference` (a tag, or the digest the manifest will
/// have).
pub async fn push(
    session: &Session,
    dir: &Path,
    reference: &Reference,
) -> Result<Pushed, OciError> {
    let contents = read_dir(dir)?;
    let config_bytes = serde_json::to_vec(&contents.config).expect("a config serializes");
    let layers: Vec<OciDescriptor> = contents
        .config
        .files
        .iter()
        .zip(&contents.data)
        .map(|(file, bytes)| {
            let media_type = if file.path.ends_with(".wasm") {
                WASM_MEDIA_TYPE
            } else {
                FILE_MEDIA_TYPE
            };
            descriptor(media_type, bytes, Some(&file.path))
        })
        .collect();
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_string()),
        config: descriptor(CONFIG_MEDIA_TYPE, &config_bytes, None),
        layers,
        subject: None,
        artifact_type: Some(ARTIFACT_TYPE.to_string()),
        annotations: Some(BTreeMap::from([
            (
                "org.opencontainers.image.title".to_string(),
                contents.config.name.clone(),
            ),
            (
                "org.opencontainers.image.version".to_string(),
                contents.config.version.clone(),
            ),
        ])),
    };
    let body = manifest_bytes(&manifest);
    let digest = sha256(&body);
    if let Some(wanted) = reference.digest()
        && wanted != digest
    {
        return Err(OciError::Digest {
            what: format!("the package's manifest for {reference}"),
            expected: wanted.to_string(),
            found: digest,
        });
    }
    session
        .login(reference, oci_client::RegistryOperation::Push)
        .await?;
    for (layer, bytes) in manifest.layers.iter().zip(&contents.data) {
        session
            .client
            .push_blob(reference, bytes, &layer.digest)
            .await
            .map_err(|e| session.error(reference, e))?;
    }
    session
        .client
        .push_blob(reference, &config_bytes, &manifest.config.digest)
        .await
        .map_err(|e| session.error(reference, e))?;
    session
        .client
        .push_manifest_raw(
            reference,
            body,
            OCI_IMAGE_MEDIA_TYPE.parse().expect("a header value"),
        )
        .await
        .map_err(|e| session.error(reference, e))?;
    Ok(Pushed {
        config: contents.config,
        digest,
    })
}

/// A package's manifest fetched from the registry, checked to be a paasm package.
#[derive(Debug, Clone)]
pub struct Resolved {
    /// `reference` pinned to the manifest's digest.
    pub pinned: Reference,
    pub digest: String,
    /// The manifest's size in bytes.
    pub size: i64,
    pub manifest: OciImageManifest,
}

/// Fetches the manifest `reference` names and checks it is a package (by digest: that the
/// registry returned exactly that manifest).
pub async fn resolve(session: &Session, reference: &Reference) -> Result<Resolved, OciError> {
    session
        .login(reference, oci_client::RegistryOperation::Pull)
        .await?;
    let (body, _) = session
        .client
        .pull_manifest_raw(reference, &session.auth, &[OCI_IMAGE_MEDIA_TYPE])
        .await
        .map_err(|e| session.error(reference, e))?;
    let digest = sha256(&body);
    if let Some(wanted) = reference.digest()
        && wanted != digest
    {
        return Err(OciError::Digest {
            what: format!("the manifest of {reference}"),
            expected: wanted.to_string(),
            found: digest,
        });
    }
    let not_a_package = |message: String| OciError::NotAPackage {
        reference: reference.to_string(),
        message,
    };
    let manifest: OciImageManifest = serde_json::from_slice(&body)
        .map_err(|e| not_a_package(format!("its manifest does not parse: {e}")))?;
    if manifest.artifact_type.as_deref() != Some(ARTIFACT_TYPE)
        || manifest.config.media_type != CONFIG_MEDIA_TYPE
    {
        return Err(not_a_package(format!(
            "its artifact type is {:?} with a config of {:?}, expected {ARTIFACT_TYPE:?} with {CONFIG_MEDIA_TYPE:?}",
            manifest.artifact_type.as_deref().unwrap_or("none"),
            manifest.config.media_type
        )));
    }
    Ok(Resolved {
        pinned: reference.clone_with_digest(digest.clone()),
        digest,
        size: body.len() as i64,
        manifest,
    })
}

/// Fetches one blob and checks it against its descriptor.
pub(super) async fn blob(
    session: &Session,
    reference: &Reference,
    descriptor: &OciDescriptor,
    what: &str,
) -> Result<Vec<u8>, OciError> {
    let mut out = Vec::new();
    let result = session
        .client
        .pull_blob(reference, descriptor, &mut out)
        .await;
    match result {
        Ok(()) => {}
        Err(oci_client::errors::OciDistributionError::DigestError(
            oci_client::errors::DigestError::VerificationError { expected, actual },
        )) => {
            return Err(OciError::Digest {
                what: format!("{what} of {reference}"),
                expected,
                found: actual,
            });
        }
        Err(e) => return Err(session.error(reference, e)),
    }
    let found = sha256(&out);
    if found != descriptor.digest || out.len() as i64 != descriptor.size {
        return Err(OciError::Digest {
            what: format!("{what} of {reference}"),
            expected: format!("{} ({} bytes)", descriptor.digest, descriptor.size),
            found: format!("{found} ({} bytes)", out.len()),
        });
    }
    Ok(out)
}

/// Fetches the package `resolved` names into `dest`, which must not exist yet: every blob is
/// checked, every path must stay inside the package, and `dest` appears only when complete.
pub async fn pull_into(
    session: &Session,
    resolved: &Resolved,
    dest: &Path,
) -> Result<PackageConfig, OciError> {
    let reference = &resolved.pinned;
    let not_a_package = |message: String| OciError::NotAPackage {
        reference: reference.to_string(),
        message,
    };
    let config_bytes = blob(session, reference, &resolved.manifest.config, "the config").await?;
    let config: PackageConfig = serde_json::from_slice(&config_bytes)
        .map_err(|e| not_a_package(format!("its config does not parse: {e}")))?;
    let layers = &resolved.manifest.layers;
    if layers.len() != config.files.len() {
        return Err(not_a_package(format!(
            "its config lists {} files but the manifest has {} layers",
            config.files.len(),
            layers.len()
        )));
    }
    let mut files = Vec::new();
    for (layer, file) in layers.iter().zip(&config.files) {
        let title = layer
            .annotations
            .as_ref()
            .and_then(|a| a.get(TITLE))
            .map(String::as_str)
            .unwrap_or_default();
        if title != file.path || layer.digest != file.digest {
            return Err(not_a_package(format!(
                "layer {title:?} ({}) does not match the config's {:?} ({})",
                layer.digest, file.path, file.digest
            )));
        }
        let relative = Path::new(&file.path);
        if file.path.is_empty()
            || file.path.contains('\\')
            || relative
                .components()
                .any(|c| !matches!(c, Component::Normal(_)))
            || file.path.split('/').any(|p| p.starts_with('.'))
        {
            return Err(not_a_package(format!(
                "the path {:?} leaves the package (paths are relative, without '..' or hidden names)",
                file.path
            )));
        }
        let bytes = blob(
            session,
            reference,
            layer,
            &format!("the layer {:?}", file.path),
        )
        .await?;
        files.push((relative.to_path_buf(), bytes));
    }
    if dest.exists()
        && dest
            .read_dir()
            .map(|mut d| d.next().is_some())
            .unwrap_or(true)
    {
        return Err(OciError::File {
            path: dest.display().to_string(),
            message: "already exists and is not empty".into(),
        });
    }
    let io = |e: std::io::Error| OciError::File {
        path: dest.display().to_string(),
        message: e.to_string(),
    };
    let parent = dest
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    std::fs::create_dir_all(parent).map_err(io)?;
    let staging = tempfile::Builder::new()
        .prefix(".pull-")
        .tempdir_in(parent)
        .map_err(io)?;
    for (relative, bytes) in &files {
        let path = staging.path().join(relative);
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        std::fs::write(&path, bytes).map_err(io)?;
    }
    if dest.exists() {
        std::fs::remove_dir(dest).map_err(io)?;
    }
    let staged = staging.keep();
    std::fs::rename(&staged, dest).map_err(|e| {
        let _ = std::fs::remove_dir_all(&staged);
        io(e)
    })?;
    Ok(config)
}
