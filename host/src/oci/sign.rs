//! Publisher keys and signatures. A key pair is ed25519, kept as PEM files (PKCS#8 for the
//! private key, SPKI for the public one); a key's id is `sha256:` and the hex sha256 of its
//! public key's DER encoding.
//!
//! A signature signs a small JSON payload naming the repository and the manifest digest (as
//! cosign's simple signing does), so a signature cannot be moved to another repository. It
//! is pushed as an artifact manifest of `artifactType` [`SIGNATURE_TYPE`] whose `subject` is
//! the signed manifest, its one layer the payload, the signature and key id in annotations.
//! Signatures are found through the OCI 1.1 referrers API, or where the registry lacks it
//! (distribution 2.8 does), through the referrers tag schema: an image index at the tag
//! `sha256-<hex>` listing the referrers, updated on each sign.

use std::collections::BTreeMap;
use std::path::Path;

use base64::Engine as _;
use ed25519_dalek::pkcs8::{
    DecodePrivateKey, DecodePublicKey, EncodePrivateKey, EncodePublicKey,
    spki::der::pem::LineEnding,
};
use ed25519_dalek::{Signature, Signer, SigningKey, Verifier, VerifyingKey};
use oci_client::Reference;
use oci_client::manifest::{
    ImageIndexEntry, OCI_IMAGE_INDEX_MEDIA_TYPE, OCI_IMAGE_MEDIA_TYPE, OciDescriptor,
    OciImageIndex, OciImageManifest,
};
use serde::{Deserialize, Serialize};

use super::artifact::{Resolved, blob, manifest_bytes};
use super::{OciError, Session, repository_of, sha256};

/// The `artifactType` of a signature manifest (and its payload layer's media type).
pub const SIGNATURE_TYPE: &str = "application/vnd.paasm.signature.v1+json";
/// The empty config of artifacts that need none.
const EMPTY_MEDIA_TYPE: &str = "application/vnd.oci.empty.v1+json";
/// The annotation holding the base64 signature of the payload.
const SIGNATURE_ANNOTATION: &str = "dev.paasm.signature";
/// The annotation naming the signing key's id.
const KEY_ANNOTATION: &str = "dev.paasm.key";

/// Why a key or a signature is not usable.
#[derive(Debug, thiserror::Error)]
pub enum SignatureError {
    #[error("cannot read the key {path}: {message}")]
    Key { path: String, message: String },
    #[error("cannot write the key {path}: {message}")]
    Write { path: String, message: String },
    #[error(
        "{reference} ({digest}) has no signature (no referrer of type {SIGNATURE_TYPE} in the registry)"
    )]
    Unsigned { reference: String, digest: String },
    #[error(
        "{reference} ({digest}) is not signed by a trusted key: signed by {found}; trusted for {scope}: {trusted}"
    )]
    Untrusted {
        reference: String,
        digest: String,
        scope: String,
        found: String,
        trusted: String,
    },
}

/// A publisher's public key and its id.
#[derive(Debug, Clone)]
pub struct PublicKey {
    pub id: String,
    pub key: VerifyingKey,
}

fn key_id(key: &VerifyingKey) -> String {
    let der = key
        .to_public_key_der()
        .expect("an ed25519 public key encodes");
    sha256(der.as_bytes())
}

impl PublicKey {
    /// Reads a public key PEM file (a private key file works too: its public half is used).
    pub fn read(path: &Path) -> Result<Self, SignatureError> {
        let text = std::fs::read_to_string(path).map_err(|e| SignatureError::Key {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
        let key = VerifyingKey::from_public_key_pem(&text)
            .or_else(|_| SigningKey::from_pkcs8_pem(&text).map(|k| k.verifying_key()))
            .map_err(|e| SignatureError::Key {
                path: path.display().to_string(),
                message: format!("not an ed25519 public key in PEM (SPKI): {e}"),
            })?;
        Ok(Self {
            id: key_id(&key),
            key,
        })
    }
}

/// Reads a private key PEM file (PKCS#8).
pub fn read_signing_key(path: &Path) -> Result<SigningKey, SignatureError> {
    let text = std::fs::read_to_string(path).map_err(|e| SignatureError::Key {
        path: path.display().to_string(),
        message: e.to_string(),
    })?;
    SigningKey::from_pkcs8_pem(&text).map_err(|e| SignatureError::Key {
        path: path.display().to_string(),
        message: format!("not an ed25519 private key in PEM (PKCS#8): {e}"),
    })
}

/// Makes a key pair: `<prefix>.key` (private, mode 0600) and `<prefix>.pub`; returns the
/// key's id. Existing files are not overwritten.
pub fn generate(prefix: &Path) -> Result<String, SignatureError> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| SignatureError::Write {
        path: prefix.display().to_string(),
        message: format!("no randomness: {e}"),
    })?;
    let key = SigningKey::from_bytes(&seed);
    let private = key
        .to_pkcs8_pem(LineEnding::LF)
        .expect("an ed25519 key encodes");
    let public = key
        .verifying_key()
        .to_public_key_pem(LineEnding::LF)
        .expect("an ed25519 public key encodes");
    let with_ext = |ext: &str| {
        let mut name = prefix.as_os_str().to_owned();
        name.push(ext);
        std::path::PathBuf::from(name)
    };
    let (key_path, pub_path) = (with_ext(".key"), with_ext(".pub"));
    for (path, text, mode) in [
        (&key_path, private.as_bytes(), 0o600),
        (&pub_path, public.as_bytes(), 0o644),
    ] {
        use std::io::Write as _;
        use std::os::unix::fs::OpenOptionsExt as _;
        let write = |path: &Path| -> std::io::Result<()> {
            let mut file = std::fs::OpenOptions::new()
                .write(true)
                .create_new(true)
                .mode(mode)
                .open(path)?;
            file.write_all(text)
        };
        write(path).map_err(|e| SignatureError::Write {
            path: path.display().to_string(),
            message: e.to_string(),
        })?;
    }
    Ok(key_id(&key.verifying_key()))
}

/// What a signature says: this repository's manifest with this digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Payload {
    #[serde(rename = "type")]
    kind: String,
    repository: String,
    digest: String,
}

const PAYLOAD_TYPE: &str = "paasm package signature";

/// Signs the package `resolved` names and stores the signature beside it; returns the
/// signature manifest's digest.
pub async fn sign(
    session: &Session,
    resolved: &Resolved,
    key: &SigningKey,
) -> Result<String, OciError> {
    let reference = &resolved.pinned;
    let payload = serde_json::to_vec(&Payload {
        kind: PAYLOAD_TYPE.into(),
        repository: repository_of(reference),
        digest: resolved.digest.clone(),
    })
    .expect("a payload serializes");
    let signature = key.sign(&payload);
    let empty = b"{}";
    let manifest = OciImageManifest {
        schema_version: 2,
        media_type: Some(OCI_IMAGE_MEDIA_TYPE.to_string()),
        config: OciDescriptor {
            media_type: EMPTY_MEDIA_TYPE.into(),
            digest: sha256(empty),
            size: empty.len() as i64,
            urls: None,
            annotations: None,
        },
        layers: vec![OciDescriptor {
            media_type: SIGNATURE_TYPE.into(),
            digest: sha256(&payload),
            size: payload.len() as i64,
            urls: None,
            annotations: Some(BTreeMap::from([
                (
                    SIGNATURE_ANNOTATION.to_string(),
                    base64::engine::general_purpose::STANDARD.encode(signature.to_bytes()),
                ),
                (KEY_ANNOTATION.to_string(), key_id(&key.verifying_key())),
            ])),
        }],
        subject: Some(OciDescriptor {
            media_type: OCI_IMAGE_MEDIA_TYPE.into(),
            digest: resolved.digest.clone(),
            size: resolved.size,
            urls: None,
            annotations: None,
        }),
        artifact_type: Some(SIGNATURE_TYPE.into()),
        annotations: None,
    };
    let body = manifest_bytes(&manifest);
    let digest = sha256(&body);
    let err = |e| session.error(reference, e);
    session
        .login(reference, oci_client::RegistryOperation::Push)
        .await?;
    session
        .client
        .push_blob(reference, empty, &manifest.config.digest)
        .await
        .map_err(err)?;
    session
        .client
        .push_blob(reference, &payload, &manifest.layers[0].digest)
        .await
        .map_err(err)?;
    let size = body.len() as i64;
    session
        .client
        .push_manifest_raw(
            &reference.clone_with_digest(digest.clone()),
            body,
            OCI_IMAGE_MEDIA_TYPE.parse().expect("a header value"),
        )
        .await
        .map_err(err)?;
    if referrers_api(session, reference).await?.is_none() {
        // The referrers tag schema: add this signature to the index at `sha256-<hex>`.
        let tag = fallback_tag(reference, &resolved.digest);
        let mut index = fallback_index(session, &tag)
            .await?
            .unwrap_or(OciImageIndex {
                schema_version: 2,
                media_type: Some(OCI_IMAGE_INDEX_MEDIA_TYPE.into()),
                manifests: Vec::new(),
                artifact_type: None,
                annotations: None,
            });
        index.manifests.retain(|m| m.digest != digest);
        index.manifests.push(ImageIndexEntry {
            media_type: OCI_IMAGE_MEDIA_TYPE.into(),
            digest: digest.clone(),
            size,
            platform: None,
            annotations: None,
        });
        session
            .client
            .push_manifest_raw(
                &tag,
                manifest_bytes(&index),
                OCI_IMAGE_INDEX_MEDIA_TYPE.parse().expect("a header value"),
            )
            .await
            .map_err(|e| session.error(&tag, e))?;
    }
    Ok(digest)
}

fn fallback_tag(reference: &Reference, digest: &str) -> Reference {
    Reference::with_tag(
        reference.registry().to_string(),
        reference.repository().to_string(),
        digest.replace(':', "-"),
    )
}

/// The referrers of `reference`'s digest through the referrers API, `None` when the
/// registry does not have the API.
async fn referrers_api(
    session: &Session,
    reference: &Reference,
) -> Result<Option<OciImageIndex>, OciError> {
    match session.client.pull_referrers(reference, None).await {
        Ok(index) => Ok(Some(index)),
        Err(
            oci_client::errors::OciDistributionError::ServerError { code: 404, .. }
            | oci_client::errors::OciDistributionError::ManifestParsingError(_),
        ) => Ok(None),
        Err(oci_client::errors::OciDistributionError::RegistryError { envelope, .. })
            if envelope.errors.iter().any(|e| {
                matches!(
                    e.code,
                    oci_client::errors::OciErrorCode::NotFound
                        | oci_client::errors::OciErrorCode::Unsupported
                )
            }) =>
        {
            Ok(None)
        }
        Err(e) => Err(session.error(reference, e)),
    }
}

/// The index at a referrers fallback tag, `None` when there is none yet.
async fn fallback_index(
    session: &Session,
    tag: &Reference,
) -> Result<Option<OciImageIndex>, OciError> {
    match session
        .client
        .pull_manifest_raw(tag, &session.auth, &[OCI_IMAGE_INDEX_MEDIA_TYPE])
        .await
    {
        Ok((body, _)) => {
            serde_json::from_slice(&body)
                .map(Some)
                .map_err(|e| OciError::NotAPackage {
                    reference: tag.to_string(),
                    message: format!("the referrers index does not parse: {e}"),
                })
        }
        Err(e) => match session.error(tag, e) {
            OciError::NotFound { .. } => Ok(None),
            other => Err(other),
        },
    }
}

/// A signature found beside a manifest.
#[derive(Debug, Clone)]
pub struct Found {
    pub key_id: String,
    /// Whether the signature verified against the key of that id (when the key was given).
    pub verified: bool,
}

/// Checks the signatures of the package `resolved` names against `trusted`: returns the id
/// of the first trusted key whose signature verifies. `scope` names where `trusted` came
/// from, for the message when none does.
pub async fn verify(
    session: &Session,
    resolved: &Resolved,
    trusted: &[PublicKey],
    scope: &str,
) -> Result<String, OciError> {
    let reference = &resolved.pinned;
    let entries = match referrers_api(session, reference).await? {
        Some(index) => index.manifests,
        None => fallback_index(session, &fallback_tag(reference, &resolved.digest))
            .await?
            .map(|i| i.manifests)
            .unwrap_or_default(),
    };
    let expected = Payload {
        kind: PAYLOAD_TYPE.into(),
        repository: repository_of(reference),
        digest: resolved.digest.clone(),
    };
    let mut found = Vec::new();
    for entry in entries {
        let at = reference.clone_with_digest(entry.digest.clone());
        let (body, _) = session
            .client
            .pull_manifest_raw(&at, &session.auth, &[OCI_IMAGE_MEDIA_TYPE])
            .await
            .map_err(|e| session.error(&at, e))?;
        if sha256(&body) != entry.digest {
            continue;
        }
        let Ok(manifest) = serde_json::from_slice::<OciImageManifest>(&body) else {
            continue;
        };
        if manifest.artifact_type.as_deref() != Some(SIGNATURE_TYPE)
            || manifest.subject.as_ref().map(|s| s.digest.as_str()) != Some(&resolved.digest)
        {
            continue;
        }
        let [layer] = manifest.layers.as_slice() else {
            continue;
        };
        let annotations = layer.annotations.clone().unwrap_or_default();
        let (Some(sig), Some(id)) = (
            annotations.get(SIGNATURE_ANNOTATION),
            annotations.get(KEY_ANNOTATION),
        ) else {
            continue;
        };
        let Some(key) = trusted.iter().find(|k| &k.id == id) else {
            found.push(Found {
                key_id: id.clone(),
                verified: false,
            });
            continue;
        };
        let payload = blob(session, &at, layer, "the signature payload").await?;
        let good = serde_json::from_slice::<Payload>(&payload).is_ok_and(|p| p == expected)
            && base64::engine::general_purpose::STANDARD
                .decode(sig)
                .ok()
                .and_then(|b| Signature::from_slice(&b).ok())
                .is_some_and(|s| key.key.verify(&payload, &s).is_ok());
        if good {
            return Ok(key.id.clone());
        }
        found.push(Found {
            key_id: format!("{id} (signature does not verify)"),
            verified: false,
        });
    }
    if found.is_empty() {
        return Err(SignatureError::Unsigned {
            reference: reference.to_string(),
            digest: resolved.digest.clone(),
        }
        .into());
    }
    Err(SignatureError::Untrusted {
        reference: reference.to_string(),
        digest: resolved.digest.clone(),
        scope: scope.to_string(),
        found: found
            .iter()
            .map(|f| f.key_id.as_str())
            .collect::<Vec<_>>()
            .join(", "),
        trusted: if trusted.is_empty() {
            "no key".into()
        } else {
            trusted
                .iter()
                .map(|k| k.id.as_str())
                .collect::<Vec<_>>()
                .join(", ")
        },
    }
    .into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_round_trip_through_pem_files() {
        let tmp = tempfile::tempdir().unwrap();
        let prefix = tmp.path().join("acme");
        let id = generate(&prefix).unwrap();
        assert!(id.starts_with("sha256:") && id.len() == 71, "{id}");
        let public = PublicKey::read(&tmp.path().join("acme.pub")).unwrap();
        assert_eq!(public.id, id);
        let private = read_signing_key(&tmp.path().join("acme.key")).unwrap();
        assert_eq!(key_id(&private.verifying_key()), id);
        let err = generate(&prefix).unwrap_err().to_string();
        assert!(err.contains("acme.key"), "{err}");
        let err = read_signing_key(&tmp.path().join("acme.pub"))
            .unwrap_err()
            .to_string();
        assert!(err.contains("not an ed25519 private key"), "{err}");
    }
}
