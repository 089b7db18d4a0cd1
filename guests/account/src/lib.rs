//! The `unix_home` implementation of the logical resource `account`: one home directory per
//! account, under the directory the `homes` config attribute names. It is the root of the
//! resource hierarchy (`hosting` sites live in an account's home). Its physical keys are
//! numbers the host allocates (`ManagedPKey`); the logical key is the account name.
//!
//! For account `<name>` with physical key `<pkey>` it writes:
//!
//! - `<homes>/<name>/`: the home, made by `create` (which fails with already-exists when it
//!   is there), filled with a copy of the `skeleton` directory when one is configured
//!   (recursively; symbolic links in the skeleton are skipped), and removed with all its
//!   content by `delete`;
//! - `<homes>/<name>/.paasm-account`: the physical key in decimal and a newline (`7\n`),
//!   which is how `enumerate` finds the accounts under `homes`;
//! - `<homes>/<name>/.paasm-quota`: the `quota` in MiB and a newline, when one was given
//!   (informational: nothing enforces it);
//! - `<homes>/<name>/.paasm-suspended`: present while the account is suspended (empty).
//!
//! `get` reports `home`, `status` (`active`, or `suspended` while the marker exists) and
//! `quota` (when recorded). The account name must be a single plain path component: letters,
//! digits, `.`, `_` and `-`, not `.` or `..`. WASI gives no owners or modes, so the home and
//! its files belong to the user the host runs as, with the default mode.

wit_bindgen::generate!({
    path: ["../../wit/platform", "../../wit/resource"],
    world: "paasm:%resource/provider",
    with: {
        "paasm:platform/types@0.1.0": paasm_sdk::bindings::paasm::platform::types,
        "paasm:platform/log@0.1.0": paasm_sdk::bindings::paasm::platform::log,
        "paasm:platform/config@0.1.0": paasm_sdk::bindings::paasm::platform::config,
        "paasm:platform/state@0.1.0": paasm_sdk::bindings::paasm::platform::state,
        "paasm:platform/parameters@0.1.0": generate,
    },
});

use std::fs;
use std::io;
use std::path::Path;

use exports::paasm::resource::operations::Guest;
use paasm::platform::parameters::{Parameters, Value};
use paasm::resource::types::{Description, Error, InvalidParameter, KeyKind, Prop, PropType};
use paasm_sdk::bindings::paasm::platform::types::Key;

/// The file recording an account's physical key.
const ACCOUNT_FILE: &str = ".paasm-account";
/// The file recording an account's quota.
const QUOTA_FILE: &str = ".paasm-quota";
/// The marker of a suspended account.
const SUSPENDED_FILE: &str = ".paasm-suspended";

/// The longest account name (a file name).
const MAX_NAME_LEN: usize = 255;

struct UnixHome;

fn prop(name: &str, ty: PropType, description: &str) -> Prop {
    Prop {
        name: name.into(),
        description: description.into(),
        type_: ty,
        default: None,
        key: false,
        optional: false,
        readonly: false,
        choices: Vec::new(),
    }
}

fn invalid(name: &str, message: impl Into<String>) -> Error {
    Error::InvalidParameter(InvalidParameter {
        name: name.into(),
        message: message.into(),
    })
}

fn failed(what: &str, path: &str, e: io::Error) -> Error {
    Error::Failed(format!("cannot {what} {path}: {e}"))
}

/// `base/name` with exactly one `/` between them.
fn join(base: &str, name: &str) -> String {
    format!("{}/{name}", base.trim_end_matches('/'))
}

/// Whether `name` is a plain path component: `[A-Za-z0-9._-]+`, not `.` or `..`.
fn is_plain_component(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= MAX_NAME_LEN
        && name != "."
        && name != ".."
        && name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// The account's name and home.
fn home_of(params: &Parameters) -> Result<(String, String), Error> {
    let name = params
        .get("name")
        .filter(|n| !n.is_empty())
        .unwrap_or_else(|| match params.lkey() {
            Key::Str(s) => s,
            Key::Num(n) => n.to_string(),
        });
    if !is_plain_component(&name) {
        return Err(invalid(
            "name",
            format!(
                "{name:?} is not a valid account name: 1 to {MAX_NAME_LEN} letters, digits, '.', '_' and '-', and not '.' or '..'"
            ),
        ));
    }
    let homes = params
        .get("homes")
        .filter(|h| !h.is_empty())
        .ok_or_else(|| invalid("homes", "missing: the attribute must be configured"))?;
    let home = join(&homes, &name);
    Ok((name, home))
}

/// The account's name and home, which must exist.
fn existing_home(params: &Parameters) -> Result<(String, String), Error> {
    let (name, home) = home_of(params)?;
    match fs::metadata(&home) {
        Ok(m) if m.is_dir() => Ok((name, home)),
        Ok(_) => Err(Error::Failed(format!(
            "the home of account {name}, {home}, is not a directory"
        ))),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Err(Error::NotFound(format!(
            "account {name} does not exist: there is no {home}"
        ))),
        Err(e) => Err(failed("read", &home, e)),
    }
}

/// The quota in `params`, if any.
fn quota(params: &Parameters) -> Result<Option<u64>, Error> {
    match params.get_value("quota") {
        None => Ok(None),
        Some(Value::Unum(n)) => Ok(Some(n)),
        Some(Value::Num(n)) if n >= 0 => Ok(Some(n as u64)),
        Some(Value::Text(t)) if t.is_empty() => Ok(None),
        Some(Value::Text(t)) => t
            .parse()
            .map(Some)
            .map_err(|_| invalid("quota", format!("{t:?} is not a number of MiB"))),
        Some(_) => Err(invalid("quota", "not a number of MiB")),
    }
}

fn write_quota(home: &str, quota: u64) -> Result<(), Error> {
    let path = join(home, QUOTA_FILE);
    fs::write(&path, format!("{quota}\n")).map_err(|e| failed("write", &path, e))
}

/// Sets what `get` reports: `home`, `status` and the recorded `quota`.
fn report(params: &Parameters, home: &str) -> Result<(), Error> {
    params.set("home", home);
    let suspended = Path::new(&join(home, SUSPENDED_FILE)).exists();
    params.set("status", if suspended { "suspended" } else { "active" });
    let path = join(home, QUOTA_FILE);
    match fs::read_to_string(&path) {
        Ok(text) => match text.trim().parse::<u64>() {
            Ok(quota) => params.set("quota", &quota.to_string()),
            Err(_) => paasm_sdk::warn!("ignored {path}: it does not hold a number"),
        },
        Err(e) if e.kind() == io::ErrorKind::NotFound => params.remove("quota"),
        Err(e) => return Err(failed("read", &path, e)),
    }
    Ok(())
}

/// Copies the directory `from` into the existing directory `to`, recursively, leaving out
/// symbolic links and this provider's own files.
fn copy_tree(from: &str, to: &str) -> Result<(), Error> {
    let entries = fs::read_dir(from).map_err(|e| failed("read", from, e))?;
    for entry in entries {
        let entry = entry.map_err(|e| failed("read", from, e))?;
        let name = entry.file_name();
        let Some(name) = name.to_str() else {
            paasm_sdk::warn!("skipped a file of {from} whose name is not utf-8");
            continue;
        };
        if [ACCOUNT_FILE, QUOTA_FILE, SUSPENDED_FILE].contains(&name) {
            continue;
        }
        let source = join(from, name);
        let target = join(to, name);
        let kind = entry.file_type().map_err(|e| failed("read", &source, e))?;
        if kind.is_dir() {
            fs::create_dir(&target).map_err(|e| failed("create", &target, e))?;
            copy_tree(&source, &target)?;
        } else if kind.is_file() {
            fs::copy(&source, &target).map_err(|e| failed("copy", &source, e))?;
        } else {
            paasm_sdk::warn!("skipped {source}: only files and directories are copied");
        }
    }
    Ok(())
}

impl Guest for UnixHome {
    fn describe() -> Description {
        Description {
            resource_name: "account".into(),
            physical_name: "unix_home".into(),
            lkey_name: "name".into(),
            lkey_kind: KeyKind::Str,
            resource_description: "an account: a home directory under homes".into(),
            parent_name: None,
            managed_pkey: true,
            instance_schema: vec![
                Prop {
                    key: true,
                    ..prop(
                        "name",
                        PropType::Str,
                        "account name: the home directory's name",
                    )
                },
                Prop {
                    optional: true,
                    ..prop(
                        "quota",
                        PropType::Unum,
                        "disk quota in MiB (recorded only, not enforced)",
                    )
                },
                Prop {
                    readonly: true,
                    ..prop("home", PropType::Path, "home directory full path")
                },
                Prop {
                    readonly: true,
                    ..prop("status", PropType::Str, "active or suspended")
                },
            ],
            config_schema: vec![
                prop(
                    "homes",
                    PropType::Path,
                    "directory holding one home directory per account",
                ),
                Prop {
                    optional: true,
                    ..prop(
                        "skeleton",
                        PropType::Path,
                        "directory copied into every new home",
                    )
                },
            ],
            exclusive: false,
            offline: false,
            ignore_exists: false,
            cacheable: true,
            case_sensitive: false,
            listable: true,
        }
    }

    fn create(params: &Parameters) -> Result<(), Error> {
        let (name, home) = home_of(params)?;
        let pkey = match params.pkey() {
            Some(Key::Num(n)) => n,
            Some(Key::Str(s)) => {
                return Err(Error::Failed(format!(
                    "account {name} has the physical key {s:?}, not a number"
                )));
            }
            None => {
                return Err(Error::Failed(format!(
                    "no physical key was allocated for account {name}"
                )));
            }
        };
        let quota = quota(params)?;
        let skeleton = params.get("skeleton").filter(|s| !s.is_empty());
        if let Some(skeleton) = &skeleton
            && !Path::new(skeleton).is_dir()
        {
            return Err(invalid(
                "skeleton",
                format!("{skeleton} is not a directory (or is not granted to this implementation)"),
            ));
        }
        let homes = params.get("homes").unwrap_or_default();
        fs::create_dir_all(&homes).map_err(|e| failed("create", &homes, e))?;
        match fs::create_dir(&home) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => {
                return Err(Error::AlreadyExists(format!(
                    "account {name} already exists: {home}"
                )));
            }
            Err(e) => return Err(failed("create", &home, e)),
        }
        let filled = (|| {
            if let Some(skeleton) = &skeleton {
                copy_tree(skeleton, &home)?;
            }
            let path = join(&home, ACCOUNT_FILE);
            fs::write(&path, format!("{pkey}\n")).map_err(|e| failed("write", &path, e))?;
            if let Some(quota) = quota {
                write_quota(&home, quota)?;
            }
            Ok(())
        })();
        if let Err(e) = filled {
            // A half-made home would block the next attempt.
            if let Err(cleanup) = fs::remove_dir_all(&home) {
                paasm_sdk::warn!("cannot remove the half-made home {home}: {cleanup}");
            }
            return Err(e);
        }
        paasm_sdk::info!("created account {name} (physical key {pkey}): {home}");
        params.set("home", &home);
        params.set("status", "active");
        Ok(())
    }

    fn get(params: &Parameters) -> Result<(), Error> {
        let (_, home) = existing_home(params)?;
        report(params, &home)
    }

    fn update(params: &Parameters, new_params: &Parameters) -> Result<(), Error> {
        let (name, home) = existing_home(params)?;
        if let Some(quota) = quota(new_params)? {
            write_quota(&home, quota)?;
            paasm_sdk::info!("account {name}: quota {quota} MiB");
        }
        report(params, &home)
    }

    fn delete(params: &Parameters) -> Result<(), Error> {
        let (name, home) = existing_home(params)?;
        fs::remove_dir_all(&home).map_err(|e| failed("remove", &home, e))?;
        paasm_sdk::info!("deleted account {name}: {home}");
        Ok(())
    }

    fn suspend(params: &Parameters) -> Result<(), Error> {
        let (name, home) = existing_home(params)?;
        let path = join(&home, SUSPENDED_FILE);
        fs::write(&path, "").map_err(|e| failed("write", &path, e))?;
        paasm_sdk::info!("suspended account {name}");
        report(params, &home)
    }

    fn resume(params: &Parameters) -> Result<(), Error> {
        let (name, home) = existing_home(params)?;
        let path = join(&home, SUSPENDED_FILE);
        match fs::remove_file(&path) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::NotFound => {}
            Err(e) => return Err(failed("remove", &path, e)),
        }
        paasm_sdk::info!("resumed account {name}");
        report(params, &home)
    }

    fn enumerate(_parent_pkey: Option<Key>, config: &Parameters) -> Result<Vec<Key>, Error> {
        let homes = config
            .get("homes")
            .filter(|h| !h.is_empty())
            .ok_or_else(|| invalid("homes", "missing: the attribute must be configured"))?;
        let entries = match fs::read_dir(&homes) {
            Ok(entries) => entries,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
            Err(e) => return Err(failed("list", &homes, e)),
        };
        let mut keys = Vec::new();
        for entry in entries {
            let entry = entry.map_err(|e| failed("list", &homes, e))?;
            if !entry.file_type().is_ok_and(|t| t.is_dir()) {
                continue;
            }
            let Some(name) = entry.file_name().to_str().map(str::to_string) else {
                continue;
            };
            let path = join(&join(&homes, &name), ACCOUNT_FILE);
            match fs::read_to_string(&path) {
                Ok(text) => match text.trim().parse::<i64>() {
                    Ok(pkey) => keys.push(pkey),
                    Err(_) => paasm_sdk::warn!("skipped {path}: it does not hold a number"),
                },
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => paasm_sdk::warn!("skipped {path}: {e}"),
            }
        }
        keys.sort_unstable();
        keys.dedup();
        Ok(keys.into_iter().map(Key::Num).collect())
    }
}

export!(UnixHome);
