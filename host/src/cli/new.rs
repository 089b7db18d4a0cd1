//! `paasm new`: writes the skeleton of a guest component, in any language paasm builds, that
//! `cargo xtask build-guests` builds and that passes its world's conformance cases as
//! generated.
//!
//! The templates are the repository's own helloworld guests, embedded in the binary with
//! `include_str!`, so a skeleton is always exactly what the conformance suites run: there is
//! no second copy to drift. A skeleton gets its own copy of the WIT world, its own name (the
//! directory, the component's file stem and, in Rust, the crate) and, in Rust, a place in the
//! guests workspace's `members`. A manager skeleton (every language) also gets a service package
//! (`config/services/<name>/`: its manager, the helloworld agent) so it runs as a service. A
//! provider skeleton is the `note` provider of its language, implementing the repository's
//! `paasm:resource/provider` world, which it reads from `wit/resource/`.

use std::fs;
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};

/// The languages a skeleton can be written in, as `--lang` names them.
pub const LANGUAGES: [&str; 5] = ["rust", "python", "js", "c", "go"];

/// The worlds a skeleton can implement, as `--world` names them.
pub const WORLDS: [&str; 3] = ["agent", "manager", "provider"];

/// The WIT world every agent skeleton implements, and its WIT file.
const AGENT_WORLD: &str = "paasm-examples:helloworld/agent";
const AGENT_WIT: &str = include_str!("../../../guests/helloworld-agent/wit/helloworld.wit");

/// The WIT world every manager skeleton implements, and its WIT file.
const MANAGER_WORLD: &str = "paasm-examples:helloworld-manager/manager";
const MANAGER_WIT: &str =
    include_str!("../../../guests/helloworld-manager/wit/helloworld-manager.wit");

/// The WIT world every provider skeleton implements: the repository's own (`wit/resource/`),
/// which a provider skeleton reads from where it stands in `guests/`.
const PROVIDER_WORLD: &str = "paasm:%resource/provider";
const PROVIDER_WIT_DIR: &str = "../../wit/resource";

/// What `paasm new` was asked for.
#[derive(Debug, Clone)]
pub struct NewGuest {
    /// One of [`LANGUAGES`].
    pub lang: String,
    /// One of [`WORLDS`].
    pub world: String,
    /// The guest's name: its directory, component and (Rust) crate name.
    pub name: String,
    /// Where to write it [default: `guests/<name>`].
    pub dir: Option<PathBuf>,
    /// Where a manager's service package goes [default: `config/services/<name>`].
    pub package_dir: Option<PathBuf>,
}

/// One file of a skeleton: its path inside the guest directory and its text.
type File = (&'static str, String);

/// Checks `request`, writes the skeleton and returns the directory written. Nothing is written
/// when the request is refused.
pub fn run(request: &NewGuest) -> Result<PathBuf> {
    if !LANGUAGES.contains(&request.lang.as_str()) {
        bail!(
            "--lang {:?} is not a language paasm builds (expected one of {})",
            request.lang,
            LANGUAGES.join(", ")
        );
    }
    if !WORLDS.contains(&request.world.as_str()) {
        bail!(
            "--world {:?} is not a world paasm serves (expected one of {})",
            request.world,
            WORLDS.join(", ")
        );
    }
    check_name(&request.name)?;
    let files = match request.world.as_str() {
        "agent" => agent(&request.lang, &request.name),
        "manager" => manager(&request.lang, &request.name),
        _ => provider(&request.lang, &request.name),
    };
    let dir = request
        .dir
        .clone()
        .unwrap_or_else(|| Path::new("guests").join(&request.name));
    if dir.exists() {
        bail!(
            "{} already exists: choose another name or --dir",
            dir.display()
        );
    }
    let package = if request.world == "manager" {
        let package_dir = request
            .package_dir
            .clone()
            .unwrap_or_else(|| Path::new("config/services").join(&request.name));
        if package_dir.exists() {
            bail!(
                "{} already exists: choose another name or --package-dir",
                package_dir.display()
            );
        }
        Some((package_dir, service_package(&request.name)))
    } else {
        None
    };
    // The workspace edit is planned before anything is written, so a refusal writes nothing.
    let workspace = if request.lang == "rust" {
        Some(workspace_edit(&dir, &request.name)?)
    } else {
        None
    };

    write_all(&dir, &files)?;
    if let Some((package_dir, package)) = &package {
        if let Err(e) = write_all(package_dir, package) {
            let _ = fs::remove_dir_all(&dir);
            return Err(e);
        }
        println!(
            "wrote the service package {}: `cargo xtask build-guests` assembles it",
            package_dir.display()
        );
    }
    match workspace {
        Some(WorkspaceEdit::Add { manifest, text }) => {
            fs::write(&manifest, text)
                .with_context(|| format!("cannot write {}", manifest.display()))?;
            println!(
                "added {:?} to the members of {}",
                request.name,
                manifest.display()
            );
        }
        Some(WorkspaceEdit::Manual(message)) => println!("{message}"),
        None => {}
    }
    Ok(dir)
}

/// A guest's name: lowercase ASCII words of letters and digits joined by `-`, starting with a
/// letter (a cargo package, a directory and a component file stem at once).
pub fn check_name(name: &str) -> Result<()> {
    let valid = name.split('-').all(|word| {
        !word.is_empty()
            && word
                .chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit())
    }) && name.starts_with(|c: char| c.is_ascii_lowercase());
    if !valid || name.len() > 64 {
        bail!(
            "name {name:?} is not a valid guest name (expected lowercase letters and digits in \
             words joined by `-`, starting with a letter, at most 64 characters, e.g. \
             `my-agent`)"
        );
    }
    Ok(())
}

/// The agent skeleton in `lang`: the helloworld agent of that language under a new name.
fn agent(lang: &str, name: &str) -> Vec<File> {
    let wit = ("wit/agent.wit", AGENT_WIT.to_string());
    match lang {
        "rust" => {
            let cargo = include_str!("../../../guests/helloworld-agent/Cargo.toml")
                .replacen(
                    "name = \"helloworld-agent\"",
                    &format!("name = \"{name}\""),
                    1,
                )
                .replacen(
                    "description = \"The ConPaaS HelloWorld agent as a paasm component\"",
                    &format!("description = \"The {name} agent as a paasm component\""),
                    1,
                );
            vec![
                ("Cargo.toml", cargo),
                (
                    "src/lib.rs",
                    include_str!("../../../guests/helloworld-agent/src/lib.rs").to_string(),
                ),
                wit,
            ]
        }
        "python" => vec![
            manifest("python", name, "app"),
            (
                "app.py",
                include_str!("../../../guests/helloworld-agent-py/app.py").to_string(),
            ),
            wit,
        ],
        "js" => vec![
            manifest("javascript", name, "app.js"),
            (
                "app.js",
                include_str!("../../../guests/helloworld-agent-js/app.js").to_string(),
            ),
            wit,
        ],
        "c" => vec![
            manifest("c", name, "agent.c"),
            (
                "agent.c",
                include_str!("../../../guests/helloworld-agent-c/agent.c").to_string(),
            ),
            wit,
        ],
        "go" => {
            macro_rules! go {
                ($path:literal) => {
                    (
                        $path,
                        include_str!(concat!("../../../guests/helloworld-agent-go/", $path))
                            .to_string(),
                    )
                };
            }
            vec![
                manifest("go", name, "wit_component"),
                go!("agent/agent.go"),
                go!("export_paasm_examples_helloworld_commands/commands.go"),
                go!("export_paasm_examples_helloworld_queries/queries.go"),
                go!("export_paasm_examples_helloworld_uploads/uploads.go"),
                go!("export_paasm_service_lifecycle/lifecycle.go"),
                wit,
            ]
        }
        _ => unreachable!("the language was checked"),
    }
}

/// The manager skeleton in `lang`: the helloworld manager of that language under a new name.
fn manager(lang: &str, name: &str) -> Vec<File> {
    let wit = ("wit/manager.wit", MANAGER_WIT.to_string());
    match lang {
        "rust" => {
            let cargo = include_str!("../../../guests/helloworld-manager/Cargo.toml")
                .replacen(
                    "name = \"helloworld-manager\"",
                    &format!("name = \"{name}\""),
                    1,
                )
                .replacen(
                    "description = \"The ConPaaS HelloWorld manager as a paasm component\"",
                    &format!("description = \"The {name} manager as a paasm component\""),
                    1,
                );
            vec![
                ("Cargo.toml", cargo),
                (
                    "src/lib.rs",
                    include_str!("../../../guests/helloworld-manager/src/lib.rs").to_string(),
                ),
                wit,
            ]
        }
        "python" => vec![
            manifest_of("python", name, MANAGER_WORLD, "app"),
            (
                "app.py",
                include_str!("../../../guests/helloworld-manager-py/app.py").to_string(),
            ),
            wit,
        ],
        "js" => vec![
            manifest_of("javascript", name, MANAGER_WORLD, "app.js"),
            (
                "app.js",
                include_str!("../../../guests/helloworld-manager-js/app.js").to_string(),
            ),
            wit,
        ],
        "c" => vec![
            manifest_of("c", name, MANAGER_WORLD, "manager.c"),
            (
                "manager.c",
                include_str!("../../../guests/helloworld-manager-c/manager.c").to_string(),
            ),
            wit,
        ],
        "go" => {
            macro_rules! go {
                ($path:literal) => {
                    (
                        $path,
                        include_str!(concat!("../../../guests/helloworld-manager-go/", $path))
                            .to_string(),
                    )
                };
            }
            vec![
                manifest_of("go", name, MANAGER_WORLD, "wit_component"),
                go!("manager/manager.go"),
                go!("export_paasm_examples_helloworld_manager_queries/queries.go"),
                go!("export_paasm_examples_helloworld_manager_uploads/uploads.go"),
                go!("export_paasm_service_lifecycle/lifecycle.go"),
                wit,
            ]
        }
        _ => unreachable!("the language was checked"),
    }
}

/// The provider skeleton in `lang`: the `note` provider of that language under a new name.
fn provider(lang: &str, name: &str) -> Vec<File> {
    let guest = |language: &str, module: &str| {
        (
            "guest.toml",
            guest_toml(name, language, PROVIDER_WORLD, PROVIDER_WIT_DIR, module),
        )
    };
    match lang {
        "rust" => {
            let cargo = include_str!("../../../guests/note-provider/Cargo.toml")
                .replacen("name = \"note-provider\"", &format!("name = \"{name}\""), 1)
                .replacen(
                    "description = \"The note resource provider: a resource kept in the provider's state, the template of provider skeletons\"",
                    &format!("description = \"The {name} resource provider as a paasm component\""),
                    1,
                );
            vec![
                ("Cargo.toml", cargo),
                (
                    "src/lib.rs",
                    include_str!("../../../guests/note-provider/src/lib.rs").to_string(),
                ),
            ]
        }
        "python" => vec![
            guest("python", "app"),
            (
                "app.py",
                include_str!("../../../guests/note-provider-py/app.py").to_string(),
            ),
        ],
        "js" => vec![
            guest("javascript", "app.js"),
            (
                "app.js",
                include_str!("../../../guests/note-provider-js/app.js").to_string(),
            ),
        ],
        "c" => vec![
            guest("c", "provider.c"),
            (
                "provider.c",
                include_str!("../../../guests/note-provider-c/provider.c").to_string(),
            ),
        ],
        "go" => {
            macro_rules! go {
                ($path:literal) => {
                    (
                        $path,
                        include_str!(concat!("../../../guests/note-provider-go/", $path))
                            .to_string(),
                    )
                };
            }
            vec![
                guest("go", "wit_component"),
                go!("note/note.go"),
                go!("export_paasm_resource_operations/operations.go"),
            ]
        }
        _ => unreachable!("the language was checked"),
    }
}

/// The service package of a manager skeleton: its manager and the helloworld agent (which its
/// methods call), with the agent's annex.
fn service_package(name: &str) -> Vec<File> {
    vec![
        (
            "service.toml",
            format!(
                "# The {name} service package. Paths are relative to this file's directory; \
                 `cargo xtask\n\
                 # build-guests` assembles it with its built components under <target>/services/.\n\
                 name = \"{name}\"\n\
                 version = \"0.1.0\"\n\
                 description = \"The {name} service\"\n\
                 \n\
                 [manager]\n\
                 component = \"{name}.wasm\"\n\
                 \n\
                 [agent]\n\
                 # Any agent component: the helloworld agent answers what this manager asks.\n\
                 component = \"helloworld-agent.wasm\"\n\
                 config = \"agent.cfg\"\n\
                 # Roles an agent node may play; add_nodes without a role uses the first.\n\
                 roles = [\"helloworld\"]\n"
            ),
        ),
        (
            "agent.cfg",
            "# The annex to every agent's configuration: the string it generates, chosen by the\n\
             # manager's agent-context hook through $STRING.\n\
             STRING_TO_GENERATE = $STRING\n"
                .to_string(),
        ),
    ]
}

/// The `guest.toml` of an agent written in `language` (as xtask names it).
fn manifest(language: &str, name: &str, module: &str) -> File {
    manifest_of(language, name, AGENT_WORLD, module)
}

/// The `guest.toml` of a guest of `world` written in `language`, with its own WIT in `wit/`.
fn manifest_of(language: &str, name: &str, world: &str, module: &str) -> File {
    (
        "guest.toml",
        guest_toml(name, language, world, "wit", module),
    )
}

/// The text of a `guest.toml`: the guest `name` in `language`, implementing `world` from the
/// WIT in the directory `wit`.
fn guest_toml(name: &str, language: &str, world: &str, wit: &str, module: &str) -> String {
    format!(
        "# The {name} guest, built by `cargo xtask build-guests` into \
         <target>/components/{name}.wasm.\n\
         language = \"{language}\"\n\
         world = \"{world}\"\n\
         wit = \"{wit}\"\n\
         module = \"{module}\"\n"
    )
}

/// Writes `files` under `dir`, which must not exist; on failure removes what it wrote.
fn write_all(dir: &Path, files: &[File]) -> Result<()> {
    fs::create_dir_all(dir).with_context(|| format!("cannot create {}", dir.display()))?;
    let written = files.iter().try_for_each(|(path, text)| {
        let path = dir.join(path);
        if let Some(parent) = path.parent() {
            fs::create_dir_all(parent)
                .with_context(|| format!("cannot create {}", parent.display()))?;
        }
        fs::write(&path, text).with_context(|| format!("cannot write {}", path.display()))
    });
    if written.is_err() {
        let _ = fs::remove_dir_all(dir);
    }
    written
}

/// How a Rust skeleton joins the guests workspace.
enum WorkspaceEdit {
    /// The workspace manifest's new text.
    Add { manifest: PathBuf, text: String },
    /// No workspace manifest next to the guest, or one paasm cannot edit: what to do by hand.
    Manual(String),
}

/// Plans adding `name` to the `members` of the workspace in `dir`'s parent directory.
fn workspace_edit(dir: &Path, name: &str) -> Result<WorkspaceEdit> {
    let parent = dir.parent().unwrap_or(Path::new("."));
    let parent = if parent.as_os_str().is_empty() {
        Path::new(".")
    } else {
        parent
    };
    let manifest = parent.join("Cargo.toml");
    let member = dir
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or(name)
        .to_string();
    let manual = WorkspaceEdit::Manual(format!(
        "note: add \"{member}\" to the `members` of the guests workspace (guests/Cargo.toml), \
         or build it as a workspace of its own"
    ));
    let Ok(text) = fs::read_to_string(&manifest) else {
        return Ok(manual);
    };
    let Some(start) = text.find("members = [") else {
        return Ok(manual);
    };
    let Some(end) = text[start..].find(']').map(|i| start + i) else {
        return Ok(manual);
    };
    let list = &text[start + "members = [".len()..end];
    if list.contains(&format!("\"{member}\"")) {
        return Ok(WorkspaceEdit::Add {
            manifest,
            text: text.clone(),
        });
    }
    let body = list.trim_end();
    let separator = if body.trim().is_empty() || body.ends_with(',') {
        ""
    } else {
        ","
    };
    let new = format!(
        "{}{}{separator}\n    \"{member}\",\n{}",
        &text[..start + "members = [".len()],
        body,
        &text[end..]
    );
    Ok(WorkspaceEdit::Add {
        manifest,
        text: new,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn request(lang: &str, world: &str, name: &str, dir: &Path) -> NewGuest {
        NewGuest {
            lang: lang.into(),
            world: world.into(),
            name: name.into(),
            dir: Some(dir.to_path_buf()),
            package_dir: Some(dir.with_extension("package")),
        }
    }

    fn scratch(test: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("paasm-new-{test}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).unwrap();
        dir
    }

    #[test]
    fn bad_input_is_refused_without_writing() {
        let root = scratch("refused");
        let dir = root.join("x");
        let err = |r: NewGuest| format!("{:#}", run(&r).unwrap_err());
        let e = err(request("cobol", "agent", "x", &dir));
        assert!(
            e.contains("--lang \"cobol\"") && e.contains("rust, python"),
            "{e}"
        );
        let e = err(request("rust", "frontend", "x", &dir));
        assert!(
            e.contains("--world \"frontend\"") && e.contains("agent"),
            "{e}"
        );
        for name in ["My-Agent", "1agent", "a--b", "a_b", "-a", "a-", "", "a/b"] {
            let e = err(request("rust", "agent", name, &dir));
            assert!(e.contains("is not a valid guest name"), "{name}: {e}");
        }
        // A manager whose package directory exists writes nothing either.
        fs::create_dir(dir.with_extension("package")).unwrap();
        let e = err(request("python", "manager", "x", &dir));
        assert!(
            e.contains("already exists") && e.contains("--package-dir"),
            "{e}"
        );
        assert!(!dir.exists());
        fs::remove_dir(dir.with_extension("package")).unwrap();
        assert!(!dir.exists());
        fs::create_dir(&dir).unwrap();
        let e = err(request("go", "agent", "x", &dir));
        assert!(e.contains("already exists"), "{e}");
        assert_eq!(fs::read_dir(&dir).unwrap().count(), 0);
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_rust_skeleton_joins_the_workspace() {
        let root = scratch("rust");
        let manifest = root.join("Cargo.toml");
        fs::write(
            &manifest,
            "[workspace]\nmembers = [\n    \"a\",\n    \"b\"\n]\n\n[profile.release]\n",
        )
        .unwrap();
        run(&request(
            "rust",
            "agent",
            "my-agent",
            &root.join("my-agent"),
        ))
        .unwrap();
        let text = fs::read_to_string(&manifest).unwrap();
        assert_eq!(
            text,
            "[workspace]\nmembers = [\n    \"a\",\n    \"b\",\n    \"my-agent\",\n]\n\n[profile.release]\n"
        );
        let cargo = fs::read_to_string(root.join("my-agent/Cargo.toml")).unwrap();
        assert!(cargo.contains("name = \"my-agent\""), "{cargo}");
        assert!(root.join("my-agent/src/lib.rs").is_file());
        assert!(root.join("my-agent/wit/agent.wit").is_file());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn a_manager_skeleton_comes_with_its_service_package() {
        let root = scratch("manager");
        let dir = root.join("my-manager");
        run(&request("python", "manager", "my-manager", &dir)).unwrap();
        let toml = fs::read_to_string(dir.join("guest.toml")).unwrap();
        assert!(toml.contains(MANAGER_WORLD), "{toml}");
        assert!(dir.join("app.py").is_file() && dir.join("wit/manager.wit").is_file());
        let package = fs::read_to_string(root.join("my-manager.package/service.toml")).unwrap();
        let package: toml::Table = toml::from_str(&package).unwrap();
        assert_eq!(package["name"].as_str(), Some("my-manager"));
        assert_eq!(
            package["manager"]["component"].as_str(),
            Some("my-manager.wasm")
        );
        assert_eq!(package["agent"]["config"].as_str(), Some("agent.cfg"));
        assert!(root.join("my-manager.package/agent.cfg").is_file());
        fs::remove_dir_all(&root).unwrap();
    }

    #[test]
    fn every_language_has_a_provider_of_the_resource_world() {
        for lang in LANGUAGES {
            let files = provider(lang, "my-provider");
            if lang == "rust" {
                let (_, cargo) = files.iter().find(|(p, _)| *p == "Cargo.toml").unwrap();
                assert!(cargo.contains("name = \"my-provider\""), "{cargo}");
                assert!(
                    cargo.contains("The my-provider resource provider"),
                    "{cargo}"
                );
            } else {
                let (_, toml) = files.iter().find(|(p, _)| *p == "guest.toml").unwrap();
                let toml: toml::Table = toml::from_str(toml).unwrap();
                assert_eq!(toml["world"].as_str(), Some(PROVIDER_WORLD), "{lang}");
                assert_eq!(toml["wit"].as_str(), Some(PROVIDER_WIT_DIR), "{lang}");
            }
        }
    }

    #[test]
    fn every_language_has_an_agent_with_its_own_wit() {
        for lang in LANGUAGES {
            let files = agent(lang, "my-agent");
            assert!(files.iter().any(|(p, _)| *p == "wit/agent.wit"), "{lang}");
            if lang != "rust" {
                let (_, toml) = files.iter().find(|(p, _)| *p == "guest.toml").unwrap();
                assert!(toml.contains("wit = \"wit\""), "{lang}: {toml}");
            }
        }
    }
}
