//! Packages published to a real OCI registry (the CNCF distribution registry, Debian's
//! `docker-registry`, on loopback with a temporary storage directory): push, pull and install
//! by tag and by digest, signatures and the trust policy, components checked at load, and the
//! errors of bad references, unreachable registries and wrong credentials.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::frontend::FrontendSetup;
use crate::managers::{ManagerSetup, copy_tree, free_port, services_dir};
use crate::support::{self, paasm_bin};

/// A registry serving from a temporary directory; killed when dropped.
pub(crate) struct Registry {
    dir: tempfile::TempDir,
    child: Child,
    pub(crate) addr: SocketAddr,
}

impl Registry {
    /// A registry without authentication.
    pub(crate) fn start() -> Self {
        Self::with_auth(None)
    }

    /// A registry; with `users` (an htpasswd file's text), only they may use it.
    fn with_auth(users: Option<&str>) -> Self {
        let dir = tempfile::tempdir().unwrap();
        let port = free_port();
        let addr: SocketAddr = format!("127.0.0.1:{port}").parse().unwrap();
        let auth = match users {
            Some(text) => {
                let path = dir.path().join("htpasswd");
                std::fs::write(&path, text).unwrap();
                format!(
                    "auth:\n  htpasswd:\n    realm: paasm-test\n    path: {}\n",
                    path.display()
                )
            }
            None => String::new(),
        };
        let config = dir.path().join("config.yml");
        std::fs::write(
            &config,
            format!(
                "version: 0.1\nlog:\n  level: warn\nstorage:\n  filesystem:\n    rootdirectory: {}\nhttp:\n  addr: {addr}\n{auth}",
                dir.path().join("data").display()
            ),
        )
        .unwrap();
        let child = Command::new("docker-registry")
            .arg("serve")
            .arg(&config)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("spawn docker-registry (installed by `cargo xtask test`)");
        let registry = Self { dir, child, addr };
        let deadline = Instant::now() + Duration::from_secs(30);
        while std::net::TcpStream::connect(addr).is_err() {
            assert!(Instant::now() < deadline, "the registry did not start");
            std::thread::sleep(Duration::from_millis(50));
        }
        registry
    }

    /// `HOST:PORT/path`.
    fn at(&self, path: &str) -> String {
        format!("{}/{path}", self.addr)
    }

    /// The file holding the blob `digest` in the registry's storage.
    fn blob_file(&self, digest: &str) -> PathBuf {
        let hex = digest.strip_prefix("sha256:").unwrap();
        self.dir
            .path()
            .join("data/docker/registry/v2/blobs/sha256")
            .join(&hex[..2])
            .join(hex)
            .join("data")
    }
}

impl Drop for Registry {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Runs `paasm ARGS` with `stdin`.
fn paasm(args: &[&str], stdin: &str, env: &[(&str, &Path)]) -> Output {
    use std::io::Write;
    let mut command = Command::new(paasm_bin());
    command
        .args(args)
        .env_remove("PAASM_TRUST_POLICY")
        .env("DOCKER_CONFIG", "/nonexistent")
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in env {
        command.env(k, v);
    }
    let mut child = command.spawn().expect("spawn paasm");
    child
        .stdin
        .take()
        .unwrap()
        .write_all(stdin.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

pub(crate) fn text(out: &Output) -> String {
    format!(
        "{}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    )
}

pub(crate) fn ok(args: &[&str]) -> String {
    let out = paasm(args, "", &[]);
    assert!(out.status.success(), "paasm {args:?}: {}", text(&out));
    String::from_utf8_lossy(&out.stdout).into_owned()
}

pub(crate) fn fails(args: &[&str], stdin: &str, env: &[(&str, &Path)]) -> String {
    let out = paasm(args, stdin, env);
    assert!(
        !out.status.success(),
        "paasm {args:?} succeeded: {}",
        text(&out)
    );
    text(&out)
}

/// The digest at the end of `paasm package push`'s line.
pub(crate) fn pushed_digest(out: &str) -> String {
    out.trim()
        .rsplit_once('@')
        .map(|(_, d)| d.to_string())
        .unwrap_or_else(|| panic!("no digest in {out:?}"))
}

/// `paasm key generate DIR/NAME`: the new key's id.
pub(crate) fn generate_key(keys: &Path, name: &str) -> String {
    ok(&["key", "generate", keys.join(name).to_str().unwrap()])
        .trim()
        .to_string()
}

/// A trust policy in `keys/policy.toml` trusting the key `keys/NAME.pub` for `scope`.
pub(crate) fn trust_policy(keys: &Path, scope: &str, name: &str) -> PathBuf {
    let policy = keys.join("policy.toml");
    std::fs::write(
        &policy,
        format!("[[trusted]]\nscope = \"{scope}\"\nkeys = [\"{name}.pub\"]\n"),
    )
    .unwrap();
    policy
}

/// `paasm package sign REFERENCE --key DIR/NAME.key`: what it printed.
pub(crate) fn sign(reference: &str, keys: &Path, name: &str) -> String {
    let key = keys.join(format!("{name}.key"));
    ok(&["package", "sign", reference, "--key", key.to_str().unwrap()])
}

/// Installs `reference` into `services` (under `policy`, if any).
pub(crate) fn install(reference: &str, services: &Path, policy: Option<&Path>) -> Output {
    let mut args = vec![
        "service".to_string(),
        "install".to_string(),
        reference.to_string(),
        "--services-dir".to_string(),
        services.display().to_string(),
        "--cache-dir".to_string(),
        support::cache_dir().display().to_string(),
    ];
    if let Some(p) = policy {
        args.push("--trust-policy".into());
        args.push(p.display().to_string());
    }
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    paasm(&args, "", &[])
}

/// The files of a directory (relative path -> bytes), hidden ones left out.
fn files(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let mut out = Vec::new();
    fn walk(root: &Path, dir: &Path, out: &mut Vec<(String, Vec<u8>)>) {
        for entry in std::fs::read_dir(dir).unwrap().flatten() {
            let path = entry.path();
            if entry.file_name().to_string_lossy().starts_with('.') {
                continue;
            }
            if path.is_dir() {
                walk(root, &path, out);
            } else {
                let rel = path.strip_prefix(root).unwrap().display().to_string();
                out.push((rel, std::fs::read(&path).unwrap()));
            }
        }
    }
    walk(dir, dir, &mut out);
    out.sort();
    out
}

#[test]
fn a_package_is_pushed_pulled_installed_by_tag_and_digest_and_runs() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let source = services_dir().join("helloworld");
    let tag = registry.at("acme/helloworld:0.1.0");
    let out = ok(&["package", "push", source.to_str().unwrap(), &tag]);
    assert!(out.contains("pushed helloworld 0.1.0"), "{out}");
    let digest = pushed_digest(&out);
    let by_digest = format!("{}@{digest}", registry.at("acme/helloworld"));

    // Pulled back by tag and by digest: the same files, byte for byte.
    for (i, reference) in [&tag, &by_digest].into_iter().enumerate() {
        let dir = tmp.path().join(format!("pulled-{i}"));
        let out = ok(&["package", "pull", reference, dir.to_str().unwrap()]);
        assert!(out.contains(&digest), "{out}");
        assert_eq!(files(&dir), files(&source), "pulled {reference}");
    }
    // Pulling into a directory that holds something changes nothing.
    let busy = tmp.path().join("pulled-0");
    let err = fails(&["package", "pull", &tag, busy.to_str().unwrap()], "", &[]);
    assert!(err.contains("not empty"), "{err}");
    // A pinned digest that is not the tag's manifest is refused.
    let wrong = format!(
        "{}@sha256:{}",
        registry.at("acme/helloworld"),
        "0".repeat(64)
    );
    let err = fails(&["package", "pull", &wrong, "x"], "", &[]);
    assert!(err.contains("is not in the registry"), "{err}");

    // Installed by tag and by digest; the origin is recorded.
    let by_tag_dir = tmp.path().join("by-tag");
    let out = install(&format!("oci://{tag}"), &by_tag_dir, None);
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&digest), "{}", text(&out));
    let services = tmp.path().join("services");
    let out = install(&format!("oci://{by_digest}"), &services, None);
    assert!(out.status.success(), "{}", text(&out));
    assert_eq!(files(&services.join("helloworld")), files(&source));

    // The installed package runs the helloworld flow.
    let mut setup = FrontendSetup::new();
    setup.services = services;
    let fe = setup.start();
    let catalogue = fe.api_ok(None, "catalogue", json!({}));
    assert_eq!(catalogue[0]["digest"], digest.as_str(), "{catalogue}");
    assert_eq!(catalogue[0]["signer"], Value::Null, "{catalogue}");
    assert_eq!(catalogue[0]["source"], by_digest.as_str(), "{catalogue}");
    let token = fe.user(None, "alice", None);
    let sid = fe.running_service(&token);
    fe.api_ok(
        Some(&token),
        "service.call",
        json!({"sid": sid, "method": "add_nodes", "params": {"count": 1}}),
    );
    assert_eq!(fe.settle(&token, sid)["state"], "RUNNING");
    let hello = fe.call(&token, sid, "get_helloworld", json!({}));
    assert_eq!(
        hello["helloworld"].as_array().map(Vec::len),
        Some(1),
        "{hello}"
    );
}

#[test]
fn a_resource_provider_is_pushed_signed_verified_and_pulled() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    // A provider is a directory of components and their files, without a service.toml.
    let source = tmp.path().join("nginx-vhost");
    std::fs::create_dir_all(&source).unwrap();
    std::fs::copy(
        support::component("nginx-vhost"),
        source.join("nginx-vhost.wasm"),
    )
    .unwrap();
    std::fs::write(source.join("README"), "the nginx_vhost provider\n").unwrap();
    let tag = registry.at("acme/nginx-vhost:1");
    let out = ok(&["package", "push", source.to_str().unwrap(), &tag]);
    let digest = pushed_digest(&out);
    let key = tmp.path().join("acme");
    generate_key(tmp.path(), "acme");
    sign(&tag, tmp.path(), "acme");
    let out = ok(&[
        "package",
        "verify",
        &tag,
        "--key",
        key.with_extension("pub").to_str().unwrap(),
    ]);
    assert!(out.contains("signed by"), "{out}");
    let pulled = tmp.path().join("pulled");
    let out = ok(&["package", "pull", &tag, pulled.to_str().unwrap()]);
    assert!(out.contains(&digest), "{out}");
    assert_eq!(files(&pulled), files(&source));
    // It is not a service: installing it as one is refused, naming what it is.
    let services = tmp.path().join("services");
    let out = install(&format!("oci://{tag}"), &services, None);
    assert!(!out.status.success());
    assert!(
        text(&out).contains("it is a resource provider"),
        "{}",
        text(&out)
    );
    assert!(!services.join("nginx-vhost").exists());
}

#[test]
fn the_trust_policy_admits_only_packages_a_trusted_key_signed() {
    let registry = Registry::start();
    let tmp = tempfile::tempdir().unwrap();
    let keys = tmp.path();
    let acme = generate_key(keys, "acme");
    let mallory = generate_key(keys, "mallory");
    assert!(
        acme.starts_with("sha256:") && acme != mallory,
        "{acme} {mallory}"
    );
    let policy = trust_policy(keys, &registry.at("acme"), "acme");

    let source = services_dir().join("helloworld");
    let tag = registry.at("acme/helloworld:1");
    let digest = pushed_digest(&ok(&["package", "push", source.to_str().unwrap(), &tag]));
    let pinned = format!("{}@{digest}", registry.at("acme/helloworld"));
    let services = tmp.path().join("services");
    let nothing_installed = |services: &Path| {
        assert!(
            std::fs::read_dir(services)
                .map(|d| d.count() == 0)
                .unwrap_or(true),
            "nothing half-installed in {}",
            services.display()
        );
    };

    // Unsigned: refused, naming the digest.
    let out = install(&format!("oci://{tag}"), &services, Some(&policy));
    assert!(!out.status.success());
    assert!(
        text(&out).contains("has no signature") && text(&out).contains(&digest),
        "{}",
        text(&out)
    );
    nothing_installed(&services);
    let err = fails(
        &[
            "package",
            "verify",
            &tag,
            "--key",
            keys.join("acme.pub").to_str().unwrap(),
        ],
        "",
        &[],
    );
    assert!(err.contains("has no signature"), "{err}");

    // Signed by an untrusted key: refused, naming the key that signed and the one trusted.
    sign(&tag, keys, "mallory");
    let out = install(&format!("oci://{tag}"), &services, Some(&policy));
    assert!(!out.status.success());
    assert!(
        text(&out).contains("not signed by a trusted key")
            && text(&out).contains(&mallory)
            && text(&out).contains(&acme),
        "{}",
        text(&out)
    );
    nothing_installed(&services);

    // Signed by the trusted key (beside the untrusted signature): installed, signer recorded.
    let out = sign(&tag, keys, "acme");
    assert!(out.contains(&digest) && out.contains(&acme), "{out}");
    let out = ok(&[
        "package",
        "verify",
        &pinned,
        "--trust-policy",
        policy.to_str().unwrap(),
    ]);
    assert!(out.contains(&format!("signed by {acme}")), "{out}");
    let out = install(&format!("oci://{tag}"), &services, Some(&policy));
    assert!(out.status.success(), "{}", text(&out));
    assert!(text(&out).contains(&acme), "{}", text(&out));
    let installed = files(&services.join("helloworld"));

    // (a) A changed package pushed under the same tag: its digest has no valid signature.
    let changed = tmp.path().join("changed");
    copy_tree(&source, &changed);
    let manifest = std::fs::read_to_string(changed.join("service.toml")).unwrap();
    std::fs::write(
        changed.join("service.toml"),
        manifest.replace("description = \"", "description = \"changed: "),
    )
    .unwrap();
    let changed_digest = pushed_digest(&ok(&["package", "push", changed.to_str().unwrap(), &tag]));
    assert_ne!(changed_digest, digest);
    let out = install(&format!("oci://{tag}"), &services, Some(&policy));
    assert!(!out.status.success());
    assert!(
        text(&out).contains("has no signature") && text(&out).contains(&changed_digest),
        "{}",
        text(&out)
    );
    assert_eq!(files(&services.join("helloworld")), installed);

    // Under `warn` an unsigned package installs, with the reason on stderr.
    let warn = keys.join("warn.toml");
    std::fs::write(
        &warn,
        std::fs::read_to_string(&policy)
            .unwrap()
            .replace("[[trusted]]", "mode = \"warn\"\n[[trusted]]"),
    )
    .unwrap();
    let other = tmp.path().join("other-services");
    let out = install(&format!("oci://{tag}"), &other, Some(&warn));
    assert!(out.status.success(), "{}", text(&out));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("warning:")
            && text(&out).contains("has no signature"),
        "{}",
        text(&out)
    );

    // (b) A layer's blob altered in the registry's storage: the signed digest is fine, the
    // blob is not.
    let agent_digest = manifest
        .lines()
        .filter(|l| l.starts_with("digest"))
        .nth(1)
        .and_then(|l| l.split('"').nth(1))
        .unwrap()
        .to_string();
    let blob = registry.blob_file(&agent_digest);
    let mut bytes = std::fs::read(&blob).unwrap();
    let last = bytes.len() - 1;
    bytes[last] ^= 0xff;
    std::fs::write(&blob, bytes).unwrap();
    let out = install(&format!("oci://{pinned}"), &services, Some(&policy));
    assert!(!out.status.success());
    assert!(
        text(&out).contains("does not match its digest") && text(&out).contains(&agent_digest),
        "{}",
        text(&out)
    );
    assert_eq!(files(&services.join("helloworld")), installed);

    // The catalogue shows the signed package; a frontend under the policy creates services
    // only from packages it admits.
    let mut setup = FrontendSetup::new();
    setup.services = services.clone();
    setup.extra_args = vec!["--trust-policy".into(), policy.display().to_string()];
    let fe = setup.start();
    let catalogue = fe.api_ok(None, "catalogue", json!({}));
    assert_eq!(catalogue.as_array().map(Vec::len), Some(1), "{catalogue}");
    assert_eq!(catalogue[0]["digest"], digest.as_str(), "{catalogue}");
    assert_eq!(catalogue[0]["signer"], acme.as_str(), "{catalogue}");
    let listed = fe.cli_ok(&["service", "catalogue"], "");
    assert!(
        listed.contains(&digest[..19]) && listed.contains(&acme[..19]),
        "{listed}"
    );
    let token = fe.user(None, "alice", None);
    fe.api_ok(
        Some(&token),
        "service.create",
        json!({"type": "helloworld"}),
    );
    drop(fe);

    let mut setup = FrontendSetup::new();
    setup.services = other;
    setup.extra_args = vec!["--trust-policy".into(), policy.display().to_string()];
    let fe = setup.start();
    let token = fe.user(None, "alice", None);
    let e = fe.api_err(
        Some(&token),
        "service.create",
        json!({"type": "helloworld"}),
    );
    assert!(
        e.to_string().contains("without a signature"),
        "the unsigned package is refused: {e}"
    );
}

#[test]
fn a_component_altered_after_install_is_refused_at_load() {
    let tmp = tempfile::tempdir().unwrap();
    let services = tmp.path().join("services");
    let out = install(
        services_dir().join("helloworld").to_str().unwrap(),
        &services,
        None,
    );
    assert!(out.status.success(), "{}", text(&out));
    // The agent component, which the manager serves its nodes at /code/agent.wasm.
    let agent = services.join("helloworld/helloworld-agent.wasm");
    let mut bytes = std::fs::read(&agent).unwrap();
    bytes[100] ^= 1;
    std::fs::write(&agent, bytes).unwrap();
    let setup = ManagerSetup::new("");
    let out = Command::new(paasm_bin())
        .arg("manager")
        .args(["--service", "helloworld", "--listen", "127.0.0.1:0"])
        .arg("--var")
        .arg(&setup.var)
        .arg("--config-dir")
        .arg(&setup.tree)
        .arg("--services-dir")
        .arg(&services)
        .arg("--cache-dir")
        .arg(support::cache_dir())
        .stdin(Stdio::null())
        .output()
        .unwrap();
    assert!(!out.status.success(), "{}", text(&out));
    assert!(
        text(&out).contains("the agent component")
            && text(&out).contains("does not match its manifest"),
        "{}",
        text(&out)
    );
}

#[test]
fn bad_references_unreachable_registries_and_wrong_credentials_are_named() {
    let tmp = tempfile::tempdir().unwrap();
    let dest = tmp.path().join("pulled");
    let dest = dest.to_str().unwrap();
    let source = services_dir().join("helloworld");
    let source = source.to_str().unwrap();

    let err = fails(&["package", "pull", "helloworld:1", dest], "", &[]);
    assert!(err.contains("names no registry"), "{err}");
    let err = fails(
        &["package", "pull", "127.0.0.1:5000/x@sha256:12", dest],
        "",
        &[],
    );
    assert!(
        err.contains("invalid reference") && err.contains("sha256:12"),
        "{err}"
    );
    let err = fails(
        &[
            "service",
            "install",
            "oci://127.0.0.1:5000/UPPER",
            "--services-dir",
            dest,
        ],
        "",
        &[],
    );
    assert!(err.contains("invalid reference"), "{err}");

    let closed = format!("127.0.0.1:{}/acme/helloworld:1", free_port());
    let err = fails(&["package", "push", source, &closed], "", &[]);
    assert!(err.contains("cannot reach the registry"), "{err}");

    let htpasswd = Command::new("htpasswd")
        .args(["-Bbn", "alice", "secret"])
        .output()
        .expect("htpasswd (apache2-utils, installed by `cargo xtask test`)");
    let registry = Registry::with_auth(Some(&String::from_utf8_lossy(&htpasswd.stdout)));
    let tag = registry.at("acme/helloworld:1");
    let err = fails(&["package", "push", source, &tag], "", &[]);
    assert!(
        err.contains("refused the credentials") && err.contains("anonymous"),
        "{err}"
    );
    let err = fails(
        &[
            "package",
            "push",
            source,
            &tag,
            "--username",
            "alice",
            "--password-stdin",
        ],
        "wrong\n",
        &[],
    );
    assert!(
        err.contains("refused the credentials of user \"alice\""),
        "{err}"
    );
    let out = paasm(
        &[
            "package",
            "push",
            source,
            &tag,
            "--username",
            "alice",
            "--password-stdin",
        ],
        "secret\n",
        &[],
    );
    assert!(out.status.success(), "{}", text(&out));
    // The docker config file's credentials.
    let docker = tmp.path().join("docker");
    std::fs::create_dir_all(&docker).unwrap();
    // base64 of "alice:secret", as `docker login` writes it.
    let auth = "YWxpY2U6c2VjcmV0";
    std::fs::write(
        docker.join("config.json"),
        json!({"auths": {registry.addr.to_string(): {"auth": auth}}}).to_string(),
    )
    .unwrap();
    let out = paasm(
        &["package", "pull", &tag, dest],
        "",
        &[("DOCKER_CONFIG", &docker)],
    );
    assert!(out.status.success(), "{}", text(&out));
    let err = fails(
        &[
            "package",
            "pull",
            &registry.at("acme/nothing:1"),
            tmp.path().join("x").to_str().unwrap(),
        ],
        "",
        &[("DOCKER_CONFIG", &docker)],
    );
    assert!(err.contains("is not in the registry"), "{err}");
    // A directory that is not a package is not pushed.
    let err = fails(
        &[
            "package",
            "push",
            tmp.path().join("docker").to_str().unwrap(),
            &tag,
        ],
        "",
        &[("DOCKER_CONFIG", &docker)],
    );
    assert!(err.contains("neither a service package"), "{err}");
}
