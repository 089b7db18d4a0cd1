//! Read access to the service's merged configuration through `paasm:platform/config`.
//!
//! The configuration is the INI file the node was started with, after interpolation. Section
//! names are case-sensitive; keys are not, as in the original ConPaaS config files.
//!
//! ```no_run
//! fn settings() -> Result<(String, u16), paasm_sdk::config::ConfigError> {
//!     let greeting = paasm_sdk::config::require("agent", "STRING_TO_GENERATE")?;
//!     let port: u16 = paasm_sdk::config::get_parsed("agent", "PORT")?;
//!     Ok((greeting, port))
//! }
//! ```

use core::fmt;
use core::str::FromStr;

use crate::bindings::paasm::platform::config as host;

/// Why a configuration value could not be used. Its `Display` names the section and the key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigError {
    /// The section or the key is absent.
    Missing {
        /// The section that was searched.
        section: String,
        /// The key that was looked up.
        key: String,
    },
    /// The value is present but does not parse as the requested type.
    Invalid {
        /// The section holding the value.
        section: String,
        /// The key holding the value.
        key: String,
        /// The value as written in the configuration.
        value: String,
        /// The parser's error message.
        reason: String,
    },
}

impl fmt::Display for ConfigError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigError::Missing { section, key } => {
                write!(
                    f,
                    "missing configuration variable {key:?} in section {section:?}"
                )
            }
            ConfigError::Invalid {
                section,
                key,
                value,
                reason,
            } => write!(
                f,
                "invalid value {value:?} for configuration variable {key:?} in section \
                 {section:?}: {reason}"
            ),
        }
    }
}

impl std::error::Error for ConfigError {}

impl From<ConfigError> for String {
    fn from(err: ConfigError) -> String {
        err.to_string()
    }
}

/// The value of `key` in `section`, or `None` when either is absent.
pub fn get(section: &str, key: &str) -> Option<String> {
    host::get(section, key)
}

/// The value of `key` in `section`, or [`ConfigError::Missing`].
pub fn require(section: &str, key: &str) -> Result<String, ConfigError> {
    get(section, key).ok_or_else(|| ConfigError::Missing {
        section: section.to_owned(),
        key: key.to_owned(),
    })
}

/// The value of `key` in `section` parsed with [`FromStr`] (surrounding whitespace ignored);
/// [`ConfigError::Missing`] when absent, [`ConfigError::Invalid`] when it does not parse.
pub fn get_parsed<T>(section: &str, key: &str) -> Result<T, ConfigError>
where
    T: FromStr,
    T::Err: fmt::Display,
{
    let value = require(section, key)?;
    value
        .trim()
        .parse()
        .map_err(|err: T::Err| ConfigError::Invalid {
            section: section.to_owned(),
            key: key.to_owned(),
            reason: err.to_string(),
            value,
        })
}

/// Every key of section `name` with its value, in file order; keys are lower-cased. Empty when
/// the section is absent.
pub fn section(name: &str) -> Vec<(String, String)> {
    host::section(name)
}

/// The names of every section, in file order.
pub fn sections() -> Vec<String> {
    host::sections()
}
