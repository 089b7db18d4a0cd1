//! Configuration files in the seed's INI format.
//!
//! The original ConPaaS manager and agent read their configuration with Python's
//! `ConfigParser`: `[section]` headers, `key = value` (or `key: value`) lines, keys
//! case-insensitive, section names case-sensitive, `%(name)s` interpolation from the same
//! section or `[DEFAULT]`. [`IniConfig`] reproduces that on top of the `rust-ini` parser and
//! adds the seed's required-variable check ([`IniConfig::missing`]).
//!
//! One deliberate difference: a `%` that does not start `%(name)s` or `%%` is kept as it is
//! instead of failing the whole file, so values such as URLs with `%20` survive.

use std::fmt;
use std::path::Path;

use ini::{Ini, ParseOption};

/// The name of the section whose keys every other section inherits, as in `ConfigParser`.
const DEFAULT_SECTION: &str = "DEFAULT";

/// How deep `%(name)s` references may nest before the file is rejected.
const MAX_INTERPOLATION_DEPTH: usize = 10;

/// An error reading or parsing a configuration file.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    #[error("cannot read configuration file {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid configuration file {path}: {message}")]
    Parse { path: String, message: String },
    #[error("invalid value for \"{key}\" in section \"{section}\": {message}")]
    Interpolation {
        section: String,
        key: String,
        message: String,
    },
}

/// A parsed, fully interpolated configuration file.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IniConfig {
    /// Sections in file order, each with its keys (lower-cased) in file order.
    sections: Vec<Section>,
}

#[derive(Debug, Clone, PartialEq)]
struct Section {
    name: String,
    entries: Vec<(String, String)>,
}

/// A configuration problem the seed reports by name: a missing section or variable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Missing {
    /// The section is absent; `keys` are the variables it should contain.
    Section { name: String, keys: Vec<String> },
    /// The key is absent from the section or its value is empty.
    Variable { section: String, key: String },
}

impl fmt::Display for Missing {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Missing::Section { name, keys } => {
                // The seed prints the section's expected keys as a Python list.
                let list = keys
                    .iter()
                    .map(|k| format!("'{k}'"))
                    .collect::<Vec<_>>()
                    .join(", ");
                write!(
                    f,
                    "Missing configuration section \"{name}\"\nSection \"{name}\" should contain variables [{list}]"
                )
            }
            Missing::Variable { section, key } => {
                write!(
                    f,
                    "Missing configuration variable \"{key}\" in section \"{section}\""
                )
            }
        }
    }
}

impl IniConfig {
    /// Reads and parses the file at `path`.
    pub fn load(path: &Path) -> Result<Self, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.display().to_string(),
            source,
        })?;
        Self::parse(&text).map_err(|e| match e {
            ConfigError::Parse { message, .. } => ConfigError::Parse {
                path: path.display().to_string(),
                message,
            },
            other => other,
        })
    }

    /// Parses configuration text (see the module docs for the dialect).
    pub fn parse(text: &str) -> Result<Self, ConfigError> {
        let options = ParseOption {
            enabled_quote: false,
            enabled_escape: false,
            enabled_indented_mutiline_value: true,
            enabled_preserve_key_leading_whitespace: false,
        };
        let ini = Ini::load_from_str_opt(text, options).map_err(|e| ConfigError::Parse {
            path: "<text>".into(),
            message: e.to_string(),
        })?;
        let mut raw: Vec<Section> = Vec::new();
        for (name, props) in ini.iter() {
            let Some(name) = name else {
                if !props.is_empty() {
                    return Err(ConfigError::Parse {
                        path: "<text>".into(),
                        message: "file contains keys before the first [section] header".into(),
                    });
                }
                continue;
            };
            let index = match raw.iter().position(|s| s.name == name) {
                Some(i) => i,
                None => {
                    raw.push(Section {
                        name: name.to_string(),
                        entries: Vec::new(),
                    });
                    raw.len() - 1
                }
            };
            for (key, value) in props.iter() {
                let key = key.trim().to_ascii_lowercase();
                let value = value.to_string();
                let entries = &mut raw[index].entries;
                match entries.iter_mut().find(|(k, _)| *k == key) {
                    Some(entry) => entry.1 = value,
                    None => entries.push((key, value)),
                }
            }
        }
        let defaults = raw
            .iter()
            .find(|s| s.name == DEFAULT_SECTION)
            .map(|s| s.entries.clone())
            .unwrap_or_default();
        let mut sections = Vec::with_capacity(raw.len());
        for section in &raw {
            let mut entries = Vec::with_capacity(section.entries.len());
            for (key, _) in &section.entries {
                let value = interpolate(&section.name, key, &section.entries, &defaults)?;
                entries.push((key.clone(), value));
            }
            sections.push(Section {
                name: section.name.clone(),
                entries,
            });
        }
        Ok(Self { sections })
    }

    /// The value of `key` (case-insensitive) in `section`, falling back to `[DEFAULT]`.
    pub fn get(&self, section: &str, key: &str) -> Option<&str> {
        let key = key.to_ascii_lowercase();
        let lookup = |name: &str| {
            self.sections
                .iter()
                .find(|s| s.name == name)
                .and_then(|s| s.entries.iter().find(|(k, _)| *k == key))
                .map(|(_, v)| v.as_str())
        };
        if !self.has_section(section) {
            return None;
        }
        lookup(section).or_else(|| lookup(DEFAULT_SECTION))
    }

    /// Whether `section` exists.
    pub fn has_section(&self, section: &str) -> bool {
        self.sections.iter().any(|s| s.name == section)
    }

    /// Every key of `section` (lower-cased) with its value, in file order.
    pub fn section(&self, section: &str) -> Vec<(String, String)> {
        self.sections
            .iter()
            .find(|s| s.name == section)
            .map(|s| s.entries.clone())
            .unwrap_or_default()
    }

    /// The names of every section, in file order.
    pub fn section_names(&self) -> Vec<String> {
        self.sections.iter().map(|s| s.name.clone()).collect()
    }

    /// The seed's required-variable check: every missing section and every missing or empty
    /// variable, in the order of `required`.
    pub fn missing(&self, required: &[(&str, &[&str])]) -> Vec<Missing> {
        let mut problems = Vec::new();
        for (section, keys) in required {
            if !self.has_section(section) {
                problems.push(Missing::Section {
                    name: section.to_string(),
                    keys: keys.iter().map(|k| k.to_string()).collect(),
                });
                continue;
            }
            for key in *keys {
                if self.get(section, key).is_none_or(str::is_empty) {
                    problems.push(Missing::Variable {
                        section: section.to_string(),
                        key: key.to_string(),
                    });
                }
            }
        }
        problems
    }
}

/// Expands `%(name)s` and `%%` in the value of `key`.
fn interpolate(
    section: &str,
    key: &str,
    entries: &[(String, String)],
    defaults: &[(String, String)],
) -> Result<String, ConfigError> {
    let find = |name: &str| {
        entries
            .iter()
            .chain(defaults)
            .find(|(k, _)| k == name)
            .map(|(_, v)| v.as_str())
    };
    let error = |message: String| ConfigError::Interpolation {
        section: section.to_string(),
        key: key.to_string(),
        message,
    };
    let mut value = find(key).unwrap_or_default().to_string();
    for _ in 0..MAX_INTERPOLATION_DEPTH {
        if !value.contains("%(") && !value.contains("%%") {
            return Ok(value);
        }
        let mut out = String::with_capacity(value.len());
        let mut rest = value.as_str();
        let mut changed = false;
        while let Some(pos) = rest.find('%') {
            out.push_str(&rest[..pos]);
            rest = &rest[pos..];
            if let Some(after) = rest.strip_prefix("%%") {
                out.push('%');
                rest = after;
            } else if let Some(after) = rest.strip_prefix("%(") {
                let Some(end) = after.find(")s") else {
                    return Err(error(format!(
                        "unterminated reference in {value:?}: expected %(name)s"
                    )));
                };
                let name = after[..end].to_ascii_lowercase();
                let Some(replacement) = find(&name) else {
                    return Err(error(format!(
                        "{value:?} refers to \"{name}\", which is not set in section \"{section}\" or [DEFAULT]"
                    )));
                };
                out.push_str(replacement);
                changed = true;
                rest = &after[end + 2..];
            } else {
                out.push('%');
                rest = &rest[1..];
            }
        }
        out.push_str(rest);
        if !changed {
            return Ok(out);
        }
        value = out;
    }
    Err(error(format!(
        "references nest deeper than {MAX_INTERPOLATION_DEPTH} levels (is there a cycle?)"
    )))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keys_are_case_insensitive_and_interpolated() {
        let cfg = IniConfig::parse(
            "[agent]\nVAR_CACHE = /var/cache/cpsagent\nCODE_REPO = %(var_cache)s/code_repo\nPCT = 100%% sure, 50% off\n",
        )
        .unwrap();
        assert_eq!(cfg.get("agent", "var_cache"), Some("/var/cache/cpsagent"));
        assert_eq!(
            cfg.get("agent", "CODE_REPO"),
            Some("/var/cache/cpsagent/code_repo")
        );
        assert_eq!(cfg.get("agent", "pct"), Some("100% sure, 50% off"));
        assert_eq!(
            cfg.get("Agent", "var_cache"),
            None,
            "sections are case-sensitive"
        );
    }

    #[test]
    fn defaults_are_inherited() {
        let cfg =
            IniConfig::parse("[DEFAULT]\nroot = /srv\n[agent]\nlog = %(root)s/log\n").unwrap();
        assert_eq!(cfg.get("agent", "log"), Some("/srv/log"));
        assert_eq!(cfg.get("agent", "root"), Some("/srv"));
    }

    #[test]
    fn a_missing_reference_names_the_key() {
        let err = IniConfig::parse("[agent]\nA = %(nope)s\n").unwrap_err();
        let message = err.to_string();
        assert!(message.contains("\"a\""), "{message}");
        assert!(message.contains("nope"), "{message}");
    }

    #[test]
    fn cycles_are_rejected() {
        let err = IniConfig::parse("[s]\na = %(b)s\nb = %(a)s\n").unwrap_err();
        assert!(err.to_string().contains("deeper"), "{err}");
    }

    #[test]
    fn missing_reports_the_seed_messages() {
        let cfg = IniConfig::parse("[agent]\nLOG_FILE = /tmp/x\nETC =\n").unwrap();
        let problems = cfg.missing(&[
            ("agent", &["LOG_FILE", "ETC", "VAR_TMP"]),
            ("iaas", &["DRIVER"]),
        ]);
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(
            text,
            vec![
                "Missing configuration variable \"ETC\" in section \"agent\"".to_string(),
                "Missing configuration variable \"VAR_TMP\" in section \"agent\"".to_string(),
                "Missing configuration section \"iaas\"\nSection \"iaas\" should contain variables ['DRIVER']"
                    .to_string(),
            ]
        );
    }

    #[test]
    fn keys_before_a_section_are_rejected() {
        assert!(IniConfig::parse("a = 1\n[s]\n").is_err());
    }
}
