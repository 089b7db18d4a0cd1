//! Packages in OCI registries: publishing a service package (or a resource provider) as an
//! OCI artifact and fetching it back (`artifact.rs`), publisher keys and signatures stored in
//! the registry beside what they sign (`sign.rs`), and the operator's trust policy naming the
//! keys trusted per registry or repository (`policy.rs`).
//!
//! The registry is reached through `oci-client`. References name their registry
//! (`HOST[:PORT]/REPOSITORY[:TAG]` or `...@sha256:DIGEST`, optionally after `oci://`); a
//! registry on loopback is spoken to over plain HTTP, as Docker does, every other one over
//! HTTPS unless [`Registry::insecure`] is set.

pub mod artifact;
pub mod policy;
pub mod sign;

use std::path::{Path, PathBuf};

use oci_client::client::{Certificate, CertificateEncoding, ClientConfig, ClientProtocol};
use oci_client::errors::OciDistributionError;
use oci_client::secrets::RegistryAuth;
use oci_client::{Client, Reference};

/// Why a registry operation failed.
#[derive(Debug, thiserror::Error)]
pub enum OciError {
    #[error(
        "invalid reference {reference:?}: {message} (expected HOST[:PORT]/REPOSITORY[:TAG] or HOST[:PORT]/REPOSITORY@sha256:DIGEST)"
    )]
    Reference { reference: String, message: String },
    #[error("cannot reach the registry {registry}: {message}")]
    Unreachable { registry: String, message: String },
    #[error(
        "the registry {registry} refused the credentials{user} (check --username/--password-stdin or the docker config file's auths)"
    )]
    Unauthorized { registry: String, user: String },
    #[error("{reference} is not in the registry: {message}")]
    NotFound { reference: String, message: String },
    #[error("the registry {registry} answered an error: {message}")]
    Registry { registry: String, message: String },
    #[error("{reference} is not a paasm package: {message}")]
    NotAPackage { reference: String, message: String },
    #[error("{what} does not match its digest: expected {expected}, found {found}")]
    Digest {
        what: String,
        expected: String,
        found: String,
    },
    #[error("cannot read credentials for {registry}: {message}")]
    Credentials { registry: String, message: String },
    #[error("{path}: {message}")]
    File { path: String, message: String },
    #[error(transparent)]
    Package(#[from] crate::service::package::PackageError),
    #[error(transparent)]
    Signature(#[from] sign::SignatureError),
    #[error(transparent)]
    Policy(#[from] policy::PolicyError),
}

/// How to reach registries: credentials and transport.
#[derive(Debug, Clone, Default)]
pub struct Registry {
    /// A user name and password given on the command line; otherwise the docker config
    /// file's `auths` (and credential helpers) for the registry, otherwise anonymous.
    pub credentials: Option<(String, String)>,
    /// Plain HTTP to every registry, not only those on loopback.
    pub insecure: bool,
    /// Extra CA certificates (PEM files) trusted for registries over HTTPS.
    pub ca_files: Vec<PathBuf>,
}

/// A reference parsed and checked: it names its registry.
pub fn parse_reference(text: &str) -> Result<Reference, OciError> {
    let bare = text.strip_prefix("oci://").unwrap_or(text);
    let bad = |message: &str| OciError::Reference {
        reference: text.to_string(),
        message: message.to_string(),
    };
    let Some((host, _)) = bare.split_once('/') else {
        return Err(bad("it names no registry"));
    };
    if !(host.contains('.') || host.contains(':') || host == "localhost") {
        return Err(bad("its first part must be a registry host"));
    }
    bare.parse::<Reference>()
        .map_err(|e| bad(&e.to_string().to_lowercase()))
}

/// The repository a reference names, with its registry: `HOST[:PORT]/REPOSITORY`.
pub fn repository_of(reference: &Reference) -> String {
    format!("{}/{}", reference.registry(), reference.repository())
}

fn is_loopback(registry: &str) -> bool {
    let host = match registry.rsplit_once(':') {
        Some((h, port)) if port.bytes().all(|b| b.is_ascii_digit()) => h,
        _ => registry,
    };
    let host = host.trim_start_matches('[').trim_end_matches(']');
    host == "localhost"
        || host
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

/// A connection to the registry of `reference`, with its credentials.
pub struct Session {
    pub client: Client,
    pub auth: RegistryAuth,
    pub registry: String,
    user: Option<String>,
}

impl Registry {
    /// A client for the registry `reference` names.
    pub fn session(&self, reference: &Reference) -> Result<Session, OciError> {
        let registry = reference.resolve_registry().to_string();
        let protocol = if self.insecure {
            ClientProtocol::Http
        } else if is_loopback(&registry) {
            ClientProtocol::HttpsExcept(vec![registry.clone()])
        } else {
            ClientProtocol::Https
        };
        let mut extra_root_certificates = Vec::new();
        for path in &self.ca_files {
            let data = std::fs::read(path).map_err(|e| OciError::File {
                path: path.display().to_string(),
                message: format!("cannot read the CA certificate: {e}"),
            })?;
            extra_root_certificates.push(Certificate {
                encoding: CertificateEncoding::Pem,
                data,
            });
        }
        let client = Client::new(ClientConfig {
            protocol,
            extra_root_certificates,
            connect_timeout: Some(std::time::Duration::from_secs(10)),
            read_timeout: Some(std::time::Duration::from_secs(60)),
            platform_resolver: None,
            ..ClientConfig::default()
        });
        let (auth, user) = match &self.credentials {
            Some((user, password)) => (
                RegistryAuth::Basic(user.clone(), password.clone()),
                Some(user.clone()),
            ),
            None => docker_config_auth(&registry)?,
        };
        Ok(Session {
            client,
            auth,
            registry,
            user,
        })
    }
}

/// The credentials the docker config file (`$DOCKER_CONFIG/config.json` or
/// `~/.docker/config.json`) gives for `registry`, anonymous when it gives none.
fn docker_config_auth(registry: &str) -> Result<(RegistryAuth, Option<String>), OciError> {
    use docker_credential::{CredentialRetrievalError as E, DockerCredential};
    match docker_credential::get_credential(registry) {
        Ok(DockerCredential::UsernamePassword(user, password)) => {
            Ok((RegistryAuth::Basic(user.clone(), password), Some(user)))
        }
        Ok(DockerCredential::IdentityToken(token)) => Ok((RegistryAuth::Bearer(token), None)),
        Err(E::ConfigNotFound | E::ConfigReadError | E::NoCredentialConfigured) => {
            Ok((RegistryAuth::Anonymous, None))
        }
        Err(e) => Err(OciError::Credentials {
            registry: registry.to_string(),
            message: e.to_string().to_lowercase(),
        }),
    }
}

impl Session {
    /// Authenticates for `op` on the repository of `reference` (a registry with a token
    /// service hands out a token; one with basic authentication is checked on first use).
    pub async fn login(
        &self,
        reference: &Reference,
        op: oci_client::RegistryOperation,
    ) -> Result<(), OciError> {
        self.client
            .auth(reference, &self.auth, op)
            .await
            .map_err(|e| self.error(reference, e))?;
        Ok(())
    }

    /// The registry's error as one that says what went wrong.
    pub fn error(&self, reference: &Reference, e: OciDistributionError) -> OciError {
        use oci_client::errors::OciErrorCode as C;
        let registry = self.registry.clone();
        let unauthorized = || OciError::Unauthorized {
            registry: registry.clone(),
            user: self
                .user
                .as_ref()
                .map(|u| format!(" of user {u:?}"))
                .unwrap_or_else(|| " (anonymous access)".into()),
        };
        match e {
            OciDistributionError::RequestError(e) => {
                if e.status().map(|s| s.as_u16()) == Some(401) {
                    return unauthorized();
                }
                let mut message = e.to_string();
                let mut source = std::error::Error::source(&e);
                while let Some(s) = source {
                    message = format!("{message}: {s}");
                    source = s.source();
                }
                OciError::Unreachable { registry, message }
            }
            OciDistributionError::UnauthorizedError { .. }
            | OciDistributionError::AuthenticationFailure(_) => unauthorized(),
            OciDistributionError::ServerError { code: 401, .. } => unauthorized(),
            OciDistributionError::ImageManifestNotFoundError(message) => OciError::NotFound {
                reference: reference.to_string(),
                message,
            },
            OciDistributionError::RegistryError { envelope, .. } => {
                let message = envelope
                    .errors
                    .iter()
                    .map(|e| format!("{:?}: {}", e.code, e.message).to_lowercase())
                    .collect::<Vec<_>>()
                    .join("; ");
                if envelope.errors.iter().any(|e| {
                    matches!(
                        e.code,
                        C::ManifestUnknown | C::NameUnknown | C::BlobUnknown | C::NotFound
                    )
                }) {
                    OciError::NotFound {
                        reference: reference.to_string(),
                        message,
                    }
                } else if envelope
                    .errors
                    .iter()
                    .any(|e| matches!(e.code, C::Unauthorized | C::Denied))
                {
                    unauthorized()
                } else {
                    OciError::Registry { registry, message }
                }
            }
            OciDistributionError::ServerError { code: 404, .. } => OciError::NotFound {
                reference: reference.to_string(),
                message: "not found".into(),
            },
            OciDistributionError::DigestError(
                oci_client::errors::DigestError::VerificationError { expected, actual },
            ) => OciError::Digest {
                what: format!("a blob of {reference}"),
                expected,
                found: actual,
            },
            other => OciError::Registry {
                registry,
                message: other.to_string(),
            },
        }
    }
}

/// What the trust policy decided about one package.
#[derive(Debug, Clone, Default)]
pub struct Verdict {
    /// The id of the trusted key whose signature verified.
    pub signer: Option<String>,
    /// Why the package would have been refused, under `mode = "warn"`.
    pub warning: Option<String>,
}

/// Checks the package `resolved` names against `policy`: under `require-signed` a trusted
/// key must have signed its manifest digest, under `warn` a failure is only reported.
pub async fn check_policy(
    session: &Session,
    resolved: &artifact::Resolved,
    policy: &policy::Policy,
) -> Result<Verdict, OciError> {
    if policy.mode == policy::Mode::Off {
        return Ok(Verdict::default());
    }
    let repository = repository_of(&resolved.pinned);
    let (keys, scope) = match policy.scope_for(&repository) {
        Some(s) => (s.keys.as_slice(), s.scope.clone()),
        None => (
            &[][..],
            format!("{repository} (no scope of the trust policy covers it)"),
        ),
    };
    match sign::verify(session, resolved, keys, &scope).await {
        Ok(id) => Ok(Verdict {
            signer: Some(id),
            warning: None,
        }),
        Err(e) if policy.mode == policy::Mode::Warn => Ok(Verdict {
            signer: None,
            warning: Some(e.to_string()),
        }),
        Err(e) => Err(e),
    }
}

/// Installs the service package `reference` names into `services`: its manifest is checked
/// against `policy` first, then every blob against its digest, then the package as a
/// directory install checks it (digests, components load); the origin (reference, digest,
/// signer) is recorded with it. On any failure nothing is installed.
pub async fn install(
    registry: &Registry,
    reference: &Reference,
    policy: &policy::Policy,
    services: &Path,
    runtime: &crate::engine::Runtime,
) -> Result<(crate::service::package::ServicePackage, Verdict), OciError> {
    let session = registry.session(reference)?;
    let resolved = artifact::resolve(&session, reference).await?;
    let verdict = check_policy(&session, &resolved, policy).await?;
    let tmp = tempfile::tempdir().map_err(|e| OciError::File {
        path: std::env::temp_dir().display().to_string(),
        message: e.to_string(),
    })?;
    let dir = tmp.path().join("package");
    let config = artifact::pull_into(&session, &resolved, &dir).await?;
    if config.kind != artifact::Kind::Service {
        return Err(OciError::NotAPackage {
            reference: reference.to_string(),
            message: format!(
                "it is a resource provider ({}), not a service package",
                config.name
            ),
        });
    }
    let origin = crate::service::package::Origin {
        reference: reference.to_string(),
        digest: resolved.digest.clone(),
        signer: verdict.signer.clone(),
    };
    let package = crate::service::package::install(&dir, services, runtime, Some(&origin))?;
    Ok((package, verdict))
}

/// `sha256:<hex>` of `bytes`.
pub fn sha256(bytes: &[u8]) -> String {
    format!("sha256:{}", crate::engine::digest(bytes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn references_name_their_registry() {
        let r = parse_reference("oci://127.0.0.1:5000/acme/hello:1.0").unwrap();
        assert_eq!(repository_of(&r), "127.0.0.1:5000/acme/hello");
        assert_eq!(r.tag(), Some("1.0"));
        let err = parse_reference("hello:1.0").unwrap_err().to_string();
        assert!(err.contains("names no registry"), "{err}");
        let err = parse_reference("127.0.0.1:5000/Acme/hello")
            .unwrap_err()
            .to_string();
        assert!(err.contains("invalid reference"), "{err}");
        let err = parse_reference("127.0.0.1:5000/acme/hello@sha256:abc")
            .unwrap_err()
            .to_string();
        assert!(err.contains("@sha256:DIGEST"), "{err}");
        assert!(is_loopback("127.0.0.1:5000"));
        assert!(is_loopback("localhost"));
        assert!(is_loopback("[::1]:5000"));
        assert!(!is_loopback("registry.example.com:5000"));
    }
}
