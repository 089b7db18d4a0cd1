//! Contextualization: the script a node runs when it boots, assembled as in the seed.
//!
//! From the configuration tree (`config/` in the repository):
//!
//! ```text
//! cloud/<cloud>.cfg                      the cloud's [iaas] section (manager config only)
//! manager/default-manager.cfg            + manager/<service>-manager.cfg (annex, appended)
//! agent/default-agent.cfg                + agent/<service>-agent.cfg (annex, appended)
//! scripts/cloud/<cloud>                  first part of every node's script
//! scripts/<role>/<role>-setup            fetches the code, sets up directories
//! scripts/<role>/default-<role>-start    or scripts/<role>/<service>-<role>-start (replaces it)
//! ```
//!
//! a node's script is: the cloud script, the role's setup, a heredoc writing
//! `$ROOT_DIR/config.cfg` (cloud configuration for managers, then the default configuration,
//! then the service's annex), then the start script. The heredoc is unquoted, so variables
//! still in it are expanded by bash at boot. Before that, two substitution layers apply:
//! [`substitute_percent`] (`%VAR%`, by whoever starts a manager) and [`substitute_dollar`]
//! (`$VAR`, by the manager for its agents; unknown names are left for bash).
//!
//! Pure text work: no wasmtime and no I/O beyond reading the tree.

use std::collections::BTreeMap;
use std::fmt;
use std::path::{Path, PathBuf};

/// The role a node plays.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    Manager,
    Agent,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Manager => "manager",
            Role::Agent => "agent",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl std::str::FromStr for Role {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "manager" => Ok(Role::Manager),
            "agent" => Ok(Role::Agent),
            other => Err(format!(
                "expected \"manager\" or \"agent\", found {other:?}"
            )),
        }
    }
}

/// A file of the configuration tree that is missing or unreadable.
#[derive(Debug, thiserror::Error)]
pub enum ContextError {
    #[error("missing {what}: {path} does not exist")]
    Missing { what: String, path: String },
    #[error("cannot read {path}: {source}")]
    Read {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid name {name:?} for a {what}: use letters, digits, '-' and '_'")]
    Name { what: &'static str, name: String },
}

/// Files a service package brings for one role, replacing the tree's (see
/// [`ConfigTree::with_overrides`]).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Overrides {
    /// The configuration annex, instead of `<role>/<service>-<role>.cfg`.
    pub annex: Option<String>,
    /// The start script, instead of `scripts/<role>/<service>-<role>-start` or the default.
    pub start: Option<String>,
}

/// The configuration tree nodes are contextualized from.
#[derive(Debug, Clone)]
pub struct ConfigTree {
    root: PathBuf,
    manager: Overrides,
    agent: Overrides,
}

impl ConfigTree {
    /// The tree rooted at `root` (the repository's `config/`).
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self {
            root: root.into(),
            manager: Overrides::default(),
            agent: Overrides::default(),
        }
    }

    /// The same tree, with a service package's own annex and start script for `role`.
    pub fn with_overrides(mut self, role: Role, overrides: Overrides) -> Self {
        match role {
            Role::Manager => self.manager = overrides,
            Role::Agent => self.agent = overrides,
        }
        self
    }

    fn overrides(&self, role: Role) -> &Overrides {
        match role {
            Role::Manager => &self.manager,
            Role::Agent => &self.agent,
        }
    }

    /// The tree's root directory.
    pub fn root(&self) -> &Path {
        &self.root
    }

    fn read(&self, relative: &str, what: String) -> Result<String, ContextError> {
        match self.read_optional(relative)? {
            Some(text) => Ok(text),
            None => Err(ContextError::Missing {
                what,
                path: self.root.join(relative).display().to_string(),
            }),
        }
    }

    fn read_optional(&self, relative: &str) -> Result<Option<String>, ContextError> {
        let path = self.root.join(relative);
        match std::fs::read_to_string(&path) {
            Ok(text) => Ok(Some(text)),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(None),
            Err(source) => Err(ContextError::Read {
                path: path.display().to_string(),
                source,
            }),
        }
    }

    /// The configuration file a node of `role` gets, before substitution: for a manager the
    /// cloud's configuration first, then the default configuration and the service's annex.
    pub fn config(&self, role: Role, service: &str, cloud: &str) -> Result<String, ContextError> {
        check_name("service", service)?;
        check_name("cloud", cloud)?;
        let mut parts = Vec::new();
        if role == Role::Manager {
            parts.push(self.read(
                &format!("cloud/{cloud}.cfg"),
                format!("configuration of cloud \"{cloud}\""),
            )?);
        }
        parts.push(self.read(
            &format!("{role}/default-{role}.cfg"),
            format!("default {role} configuration"),
        )?);
        let annex = match &self.overrides(role).annex {
            Some(annex) => Some(annex.clone()),
            None => self.read_optional(&format!("{role}/{service}-{role}.cfg"))?,
        };
        parts.extend(annex);
        Ok(join_parts(&parts))
    }

    /// The whole boot script of a node of `role` for `service` on `cloud`, before substitution.
    pub fn script(&self, role: Role, service: &str, cloud: &str) -> Result<String, ContextError> {
        let config = self.config(role, service, cloud)?;
        let cloud_script = self.read(
            &format!("scripts/cloud/{cloud}"),
            format!("cloud script of cloud \"{cloud}\""),
        )?;
        let setup = self.read(
            &format!("scripts/{role}/{role}-setup"),
            format!("{role} setup script"),
        )?;
        let start = match &self.overrides(role).start {
            Some(start) => Some(start.clone()),
            None => self.read_optional(&format!("scripts/{role}/{service}-{role}-start"))?,
        };
        let start = match start {
            Some(start) => start,
            None => self.read(
                &format!("scripts/{role}/default-{role}-start"),
                format!("default {role} start script"),
            )?,
        };
        let heredoc = format!("cat <<EOF > $ROOT_DIR/config.cfg\n{config}EOF\n");
        Ok(join_parts(&[cloud_script, setup, heredoc, start]))
    }
}

/// Names become file names: keep them to one path component of safe characters.
fn check_name(what: &'static str, name: &str) -> Result<(), ContextError> {
    let ok = !name.is_empty()
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    if ok {
        Ok(())
    } else {
        Err(ContextError::Name {
            what,
            name: name.to_string(),
        })
    }
}

/// Concatenates parts, each ending with a newline.
fn join_parts(parts: &[String]) -> String {
    let mut out = String::new();
    for part in parts {
        out.push_str(part);
        if !part.ends_with('\n') {
            out.push('\n');
        }
    }
    out
}

/// `%NAME%` replacement, literal, for every name in `vars` (the frontend's layer).
pub fn substitute_percent(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = text.to_string();
    for (name, value) in vars {
        out = out.replace(&format!("%{name}%"), value);
    }
    out
}

/// `$NAME` and `${NAME}` replacement with Python's `Template.safe_substitute` rules (the
/// manager's layer): `$$` becomes `$`, names not in `vars` are left as they are for bash.
pub fn substitute_dollar(text: &str, vars: &BTreeMap<String, String>) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    while let Some(pos) = rest.find('$') {
        out.push_str(&rest[..pos]);
        let after = &rest[pos + 1..];
        if let Some(tail) = after.strip_prefix('$') {
            out.push('$');
            rest = tail;
            continue;
        }
        let (name, braced) = match after.strip_prefix('{') {
            Some(inner) => match inner.find('}') {
                Some(end) if is_identifier(&inner[..end]) => (&inner[..end], true),
                _ => ("", false),
            },
            None => {
                let len = identifier_len(after);
                (&after[..len], false)
            }
        };
        match vars.get(name).filter(|_| !name.is_empty()) {
            Some(value) => {
                out.push_str(value);
                let consumed = if braced { name.len() + 2 } else { name.len() };
                rest = &after[consumed..];
            }
            None => {
                out.push('$');
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

fn identifier_len(text: &str) -> usize {
    let mut len = 0;
    for (i, c) in text.char_indices() {
        let ok = c == '_' || c.is_ascii_alphabetic() || (i > 0 && c.is_ascii_digit());
        if !ok {
            break;
        }
        len = i + c.len_utf8();
    }
    len
}

fn is_identifier(text: &str) -> bool {
    !text.is_empty() && identifier_len(text) == text.len()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn vars(pairs: &[(&str, &str)]) -> BTreeMap<String, String> {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    #[test]
    fn dollar_substitution_follows_safe_substitute() {
        let v = vars(&[("STRING", "helloworld"), ("SOURCE", "http://m:80/code")]);
        assert_eq!(
            substitute_dollar("STRING_TO_GENERATE = $STRING", &v),
            "STRING_TO_GENERATE = helloworld"
        );
        assert_eq!(
            substitute_dollar("${SOURCE}/x $SOURCE/y", &v),
            "http://m:80/code/x http://m:80/code/y"
        );
        // Unknown names, a lone `$` and a bad brace stay for bash; `$$` is an escaped `$`.
        assert_eq!(
            substitute_dollar("$LOG_FILE ${ETC} $ ${1x} $$STRING", &v),
            "$LOG_FILE ${ETC} $ ${1x} $STRING"
        );
        assert_eq!(
            substitute_dollar("$STRINGS", &v),
            "$STRINGS",
            "the longest identifier counts"
        );
        assert_eq!(substitute_dollar("cost: 5$", &v), "cost: 5$");
    }

    #[test]
    fn percent_substitution_is_literal() {
        let v = vars(&[
            ("CONPAAS_SERVICE_TYPE", "helloworld"),
            ("FRONTEND_URL", "http://fe"),
        ]);
        assert_eq!(
            substitute_percent(
                "TYPE = %CONPAAS_SERVICE_TYPE%\nURL = %FRONTEND_URL%/cb %OTHER% %(ROOT)s",
                &v
            ),
            "TYPE = helloworld\nURL = http://fe/cb %OTHER% %(ROOT)s"
        );
    }

    fn tree() -> (tempfile::TempDir, ConfigTree) {
        let dir = tempfile::tempdir().unwrap();
        let files = [
            ("cloud/local.cfg", "[iaas]\nDRIVER = local\n"),
            ("agent/default-agent.cfg", "[agent]\nLOG_FILE = $LOG_FILE"),
            ("agent/hello-agent.cfg", "STRING_TO_GENERATE = $STRING\n"),
            (
                "manager/default-manager.cfg",
                "[manager]\nTYPE = %CONPAAS_SERVICE_TYPE%\n",
            ),
            ("scripts/cloud/local", "#!/bin/bash\nIP_PUBLIC=$NODE_IP\n"),
            ("scripts/agent/agent-setup", "ROOT_DIR=$NODE_DIR\n"),
            (
                "scripts/agent/default-agent-start",
                "echo default agent start\n",
            ),
            (
                "scripts/agent/hello-agent-start",
                "echo hello agent start\n",
            ),
            ("scripts/manager/manager-setup", "ROOT_DIR=$NODE_DIR\n"),
            (
                "scripts/manager/default-manager-start",
                "echo default manager start\n",
            ),
        ];
        for (path, text) in files {
            let path = dir.path().join(path);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        let tree = ConfigTree::new(dir.path());
        (dir, tree)
    }

    #[test]
    fn agent_scripts_are_assembled_in_the_seed_order() {
        let (_dir, tree) = tree();
        let script = tree.script(Role::Agent, "hello", "local").unwrap();
        assert_eq!(
            script,
            "#!/bin/bash\nIP_PUBLIC=$NODE_IP\nROOT_DIR=$NODE_DIR\ncat <<EOF > $ROOT_DIR/config.cfg\n[agent]\nLOG_FILE = $LOG_FILE\nSTRING_TO_GENERATE = $STRING\nEOF\necho hello agent start\n"
        );
        // Without a service start script the default one runs; without an annex, none is added.
        let script = tree.script(Role::Agent, "other", "local").unwrap();
        assert!(
            script.ends_with("[agent]\nLOG_FILE = $LOG_FILE\nEOF\necho default agent start\n"),
            "{script}"
        );
    }

    #[test]
    fn a_package_annex_and_start_script_replace_the_trees() {
        let (_dir, tree) = tree();
        let tree = tree.with_overrides(
            Role::Agent,
            Overrides {
                annex: Some("GREETING = $STRING\n".into()),
                start: Some("echo packaged start\n".into()),
            },
        );
        let script = tree.script(Role::Agent, "hello", "local").unwrap();
        assert!(
            script
                .ends_with("LOG_FILE = $LOG_FILE\nGREETING = $STRING\nEOF\necho packaged start\n"),
            "{script}"
        );
        // The manager's files are untouched.
        let script = tree.script(Role::Manager, "hello", "local").unwrap();
        assert!(script.ends_with("echo default manager start\n"), "{script}");
    }

    #[test]
    fn manager_configs_start_with_the_cloud() {
        let (_dir, tree) = tree();
        let config = tree.config(Role::Manager, "hello", "local").unwrap();
        assert_eq!(
            config,
            "[iaas]\nDRIVER = local\n[manager]\nTYPE = %CONPAAS_SERVICE_TYPE%\n"
        );
    }

    #[test]
    fn missing_files_and_bad_names_are_named() {
        let (_dir, tree) = tree();
        let err = tree
            .script(Role::Agent, "hello", "ec2")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("cloud script of cloud \"ec2\"") && err.contains("scripts/cloud/ec2"),
            "{err}"
        );
        let err = tree
            .script(Role::Agent, "../etc", "local")
            .unwrap_err()
            .to_string();
        assert!(
            err.contains("invalid name \"../etc\" for a service"),
            "{err}"
        );
    }
}
