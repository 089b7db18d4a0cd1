//! The operator's trust policy: which publisher keys are trusted for which registry or
//! repository, and what to do with a package that no trusted key signed.
//!
//! ```toml
//! mode = "require-signed"            # or "warn" or "off"; default require-signed when any key is given
//!
//! [[trusted]]
//! scope = "registry.example.com/acme" # a registry, or a repository prefix in one
//! keys = ["acme.pub"]                  # public key files, relative to this file
//! ```
//!
//! The scope with the longest matching prefix (on `/` boundaries) names the keys trusted for a
//! reference; a reference no scope covers has none.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::sign::PublicKey;
use crate::service::package::Origin;

/// What a policy does with a package no trusted key signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Mode {
    /// Refuse it.
    RequireSigned,
    /// Install it with a warning.
    Warn,
    /// Check nothing.
    Off,
}

impl std::fmt::Display for Mode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(match self {
            Mode::RequireSigned => "require-signed",
            Mode::Warn => "warn",
            Mode::Off => "off",
        })
    }
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct PolicyFile {
    mode: Option<Mode>,
    #[serde(default)]
    trusted: Vec<TrustedFile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct TrustedFile {
    scope: String,
    keys: Vec<PathBuf>,
}

/// Why a policy file cannot be used.
#[derive(Debug, thiserror::Error)]
#[error("invalid trust policy {path}: {message}")]
pub struct PolicyError {
    pub path: String,
    pub message: String,
}

/// Keys trusted for one scope.
#[derive(Debug, Clone)]
pub struct Scope {
    pub scope: String,
    pub keys: Vec<PublicKey>,
}

/// A trust policy, read and checked (every key file loads).
#[derive(Debug, Clone)]
pub struct Policy {
    pub mode: Mode,
    pub scopes: Vec<Scope>,
}

impl Default for Policy {
    /// No policy: nothing is checked.
    fn default() -> Self {
        Self {
            mode: Mode::Off,
            scopes: Vec::new(),
        }
    }
}

impl Policy {
    /// Reads the policy file at `path`.
    pub fn read(path: &Path) -> Result<Self, PolicyError> {
        let invalid = |message: String| PolicyError {
            path: path.display().to_string(),
            message,
        };
        let text = std::fs::read_to_string(path).map_err(|e| invalid(e.to_string()))?;
        let file: PolicyFile = toml::from_str(&text).map_err(|e| invalid(e.to_string()))?;
        let base = path.parent().unwrap_or(Path::new("."));
        let mut scopes = Vec::new();
        for (i, t) in file.trusted.iter().enumerate() {
            let scope = t.scope.trim_end_matches('/').to_string();
            if scope.is_empty() || scope.contains("://") || scope.contains(['@', ' ']) {
                return Err(invalid(format!(
                    "trusted[{i}].scope must be a registry or a repository prefix (HOST[:PORT][/PATH]), found {:?}",
                    t.scope
                )));
            }
            if t.keys.is_empty() {
                return Err(invalid(format!(
                    "trusted[{i}].keys must name at least one public key file"
                )));
            }
            let keys = t
                .keys
                .iter()
                .map(|k| PublicKey::read(&base.join(k)))
                .collect::<Result<Vec<_>, _>>()
                .map_err(|e| invalid(format!("trusted[{i}].keys: {e}")))?;
            scopes.push(Scope { scope, keys });
        }
        let mode = file.mode.unwrap_or(if scopes.is_empty() {
            Mode::Off
        } else {
            Mode::RequireSigned
        });
        Ok(Self { mode, scopes })
    }

    /// The scope trusted for `repository` (`HOST[:PORT]/REPOSITORY`): the longest prefix.
    pub fn scope_for(&self, repository: &str) -> Option<&Scope> {
        self.scopes
            .iter()
            .filter(|s| {
                repository == s.scope
                    || repository
                        .strip_prefix(&s.scope)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
            .max_by_key(|s| s.scope.len())
    }
}

impl Policy {
    /// Whether an installed package with `origin` may be used: under `require-signed` it must
    /// have come from a registry signed by a key this policy trusts for its repository
    /// (`warn` logs what `require-signed` would refuse). The error says why not.
    pub fn admits(&self, name: &str, origin: Option<&Origin>) -> Result<(), String> {
        let refusal = match origin {
            _ if self.mode == Mode::Off => return Ok(()),
            None => {
                format!("the package {name:?} was installed from a directory, without a signature")
            }
            Some(o) => {
                let repository = super::parse_reference(&o.reference)
                    .map(|r| super::repository_of(&r))
                    .unwrap_or_else(|_| o.reference.clone());
                let scope = self.scope_for(&repository);
                match &o.signer {
                    Some(id) if scope.is_some_and(|s| s.keys.iter().any(|k| &k.id == id)) => {
                        return Ok(());
                    }
                    Some(id) => format!(
                        "the package {name:?} ({} {}) is signed by {id}, which the trust policy does not trust for {repository}",
                        o.reference, o.digest
                    ),
                    None => format!(
                        "the package {name:?} ({} {}) was installed without a signature",
                        o.reference, o.digest
                    ),
                }
            }
        };
        if self.mode == Mode::Warn {
            tracing::warn!("{refusal} (allowed: the trust policy's mode is warn)");
            return Ok(());
        }
        Err(refusal)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_longest_scope_wins_and_the_mode_defaults_to_require_signed() {
        let tmp = tempfile::tempdir().unwrap();
        let a = crate::oci::sign::generate(&tmp.path().join("a")).unwrap();
        let b = crate::oci::sign::generate(&tmp.path().join("b")).unwrap();
        let path = tmp.path().join("policy.toml");
        std::fs::write(
            &path,
            "[[trusted]]\nscope = \"127.0.0.1:5000\"\nkeys = [\"a.pub\"]\n\n[[trusted]]\nscope = \"127.0.0.1:5000/acme/\"\nkeys = [\"b.pub\"]\n",
        )
        .unwrap();
        let policy = Policy::read(&path).unwrap();
        assert_eq!(policy.mode, Mode::RequireSigned);
        let ids = |r: &str| {
            policy
                .scope_for(r)
                .map(|s| s.keys.iter().map(|k| k.id.clone()).collect::<Vec<_>>())
        };
        assert_eq!(ids("127.0.0.1:5000/acme/hello"), Some(vec![b.clone()]));
        assert_eq!(ids("127.0.0.1:5000/acmex/hello"), Some(vec![a.clone()]));
        assert_eq!(ids("127.0.0.1:5001/acme/hello"), None);

        std::fs::write(
            &path,
            "mode = \"strict\"\n[[trusted]]\nscope = \"x\"\nkeys = [\"a.pub\"]\n",
        )
        .unwrap();
        let err = Policy::read(&path).unwrap_err().to_string();
        assert!(err.contains("strict"), "{err}");
        std::fs::write(&path, "[[trusted]]\nscope = \"x\"\nkeys = [\"nope.pub\"]\n").unwrap();
        let err = Policy::read(&path).unwrap_err().to_string();
        assert!(
            err.contains("trusted[0].keys") && err.contains("nope.pub"),
            "{err}"
        );
        std::fs::write(&path, "mode = \"warn\"\n").unwrap();
        assert_eq!(Policy::read(&path).unwrap().mode, Mode::Warn);
        std::fs::write(&path, "").unwrap();
        assert_eq!(Policy::read(&path).unwrap().mode, Mode::Off);
    }
}
