//! The frontend's command-line client: `paasm login`, `paasm user ...`, `paasm service ...`
//! and `paasm call SID ...`, all speaking the frontend's JSON-RPC API.
//!
//! Credentials (the frontend's address, the user name and an API token, never the password)
//! live in `$PAASM_CREDENTIALS`, else `$XDG_CONFIG_HOME/paasm/credentials.toml`, else
//! `~/.config/paasm/credentials.toml`, readable by the user only. Passwords are read from the
//! terminal without echo, or from standard input with `--password-stdin`, and are sent only in
//! a request body.

use std::io::{IsTerminal, Read, Write};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use bytes::Bytes;
use http_body_util::Full;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value, json};

/// States a service passes through; commands that start an operation wait them out.
const TRANSIENT: [&str; 4] = ["PREINIT", "PROLOGUE", "ADAPTING", "EPILOGUE"];

/// What every frontend command shares.
#[derive(Debug, Clone)]
pub struct Common {
    /// The frontend's address, overriding the credentials file.
    pub frontend: Option<String>,
    /// How long a request, and a waited-for operation, may take.
    pub timeout: Duration,
    /// Print the API's JSON instead of text.
    pub json: bool,
    /// Show spinners (a terminal is attached).
    pub progress: bool,
}

/// The credentials file's contents.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Credentials {
    pub frontend: String,
    #[serde(default)]
    pub username: String,
    #[serde(default)]
    pub token: String,
}

/// Where the credentials are kept.
pub fn credentials_path() -> Result<PathBuf> {
    if let Some(path) = std::env::var_os("PAASM_CREDENTIALS") {
        return Ok(PathBuf::from(path));
    }
    let config = std::env::var_os("XDG_CONFIG_HOME")
        .map(PathBuf::from)
        .filter(|p| p.is_absolute())
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".config")))
        .context("cannot tell where to keep credentials: set HOME or PAASM_CREDENTIALS")?;
    Ok(config.join("paasm").join("credentials.toml"))
}

fn load_credentials() -> Result<Option<Credentials>> {
    let path = credentials_path()?;
    let text = match std::fs::read_to_string(&path) {
        Ok(text) => text,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(e).with_context(|| format!("cannot read {}", path.display())),
    };
    toml::from_str(&text)
        .map(Some)
        .with_context(|| format!("invalid credentials file {}", path.display()))
}

/// Writes the credentials readable and writable by the user only.
fn save_credentials(credentials: &Credentials) -> Result<PathBuf> {
    use std::os::unix::fs::{DirBuilderExt, OpenOptionsExt, PermissionsExt};
    let path = credentials_path()?;
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)
            .with_context(|| format!("cannot create {}", dir.display()))?;
    }
    let text = toml::to_string(credentials).context("cannot write the credentials")?;
    let tmp = path.with_extension("toml.tmp");
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .mode(0o600)
        .open(&tmp)
        .with_context(|| format!("cannot write {}", tmp.display()))?;
    file.set_permissions(std::fs::Permissions::from_mode(0o600))?;
    file.write_all(text.as_bytes())?;
    file.sync_all()?;
    std::fs::rename(&tmp, &path).with_context(|| format!("cannot write {}", path.display()))?;
    Ok(path)
}

/// A client of one frontend.
pub struct Client {
    addr: SocketAddr,
    url: String,
    token: Option<String>,
    timeout: Duration,
}

/// An error the frontend answered.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct RemoteError {
    pub code: i64,
    pub message: String,
    pub field: Option<String>,
}

impl Client {
    /// A client of the frontend in `common` or the credentials file, with the saved token.
    pub fn new(common: &Common) -> Result<Self> {
        let saved = load_credentials()?;
        let url = match (&common.frontend, &saved) {
            (Some(url), _) => url.clone(),
            (None, Some(c)) => c.frontend.clone(),
            (None, None) => bail!(
                "no frontend given: pass --frontend http://HOST:PORT or log in first (paasm login)"
            ),
        };
        let addr = crate::cli::call::parse_server(&url)
            .with_context(|| format!("invalid frontend address {url:?}"))?;
        let url = format!("http://{addr}");
        // The saved token only for the frontend it came from.
        let token = saved
            .filter(|c| {
                crate::cli::call::parse_server(&c.frontend).is_ok_and(|a| a == addr)
                    && !c.token.is_empty()
            })
            .map(|c| c.token);
        Ok(Self {
            addr,
            url,
            token,
            timeout: common.timeout,
        })
    }

    fn require_login(&self) -> Result<()> {
        if self.token.is_none() {
            bail!(
                "not logged in to {}: run paasm login --frontend {} USERNAME",
                self.url,
                self.url
            );
        }
        Ok(())
    }

    /// Calls an API method; the frontend's errors come back as [`RemoteError`].
    pub async fn call(&self, method: &str, params: Value) -> Result<Value> {
        let body = json!({"jsonrpc": "2.0", "id": 1, "method": method, "params": params});
        let mut request = hyper::Request::post("/api")
            .header("Content-Type", "application/json")
            .body(Full::new(Bytes::from(body.to_string())))?;
        if let Some(token) = &self.token {
            request
                .headers_mut()
                .insert("Authorization", format!("Bearer {token}").parse()?);
        }
        let (status, body) = crate::rpc::client::exchange(self.addr, request, self.timeout)
            .await
            .map_err(|e| anyhow::anyhow!("the frontend at {}: {e}", self.addr))?;
        if !status.is_success() {
            bail!(
                "the frontend answered HTTP {status}: {}",
                String::from_utf8_lossy(&body).trim()
            );
        }
        let reply: Value =
            serde_json::from_slice(&body).context("the frontend's reply is not JSON")?;
        if let Some(error) = reply.get("error") {
            return Err(RemoteError {
                code: error["code"].as_i64().unwrap_or(0),
                message: error["message"].as_str().unwrap_or("unknown error").into(),
                field: error["data"]["field"].as_str().map(str::to_string),
            }
            .into());
        }
        Ok(reply.get("result").cloned().unwrap_or(Value::Null))
    }
}

/// Reads a password: from standard input with `stdin`, else from the terminal without echo.
fn read_password(prompt: &str, stdin: bool) -> Result<String> {
    let password = if stdin || !std::io::stdin().is_terminal() {
        let mut text = String::new();
        std::io::stdin()
            .read_to_string(&mut text)
            .context("cannot read the password from standard input")?;
        text.lines().next().unwrap_or_default().to_string()
    } else {
        rpassword::prompt_password(prompt).context("cannot read the password")?
    };
    if password.is_empty() {
        bail!("empty password");
    }
    Ok(password)
}

/// `paasm login`: exchanges the password for a token and saves it.
pub async fn login(common: &Common, username: &str, password_stdin: bool) -> Result<()> {
    let frontend = common
        .frontend
        .clone()
        .or_else(|| load_credentials().ok().flatten().map(|c| c.frontend))
        .context("no frontend given: pass --frontend http://HOST:PORT")?;
    let client = Client::new(&Common {
        frontend: Some(frontend),
        ..common.clone()
    })?;
    let password = read_password(&format!("password for {username}: "), password_stdin)?;
    let reply = client
        .call("login", json!({"username": username, "password": password}))
        .await?;
    let token = reply["token"]
        .as_str()
        .context("the frontend's login reply has no token")?;
    let path = save_credentials(&Credentials {
        frontend: client.url.clone(),
        username: username.to_string(),
        token: token.to_string(),
    })?;
    if common.json {
        println!("{}", serde_json::to_string_pretty(&reply["user"])?);
    } else {
        println!(
            "logged in to {} as {username} (credit {}); credentials in {}",
            client.url,
            reply["user"]["credit"],
            path.display()
        );
    }
    Ok(())
}

/// `paasm logout`: revokes the token and forgets it.
pub async fn logout(common: &Common) -> Result<()> {
    let client = Client::new(common)?;
    client.require_login()?;
    client.call("logout", json!({})).await?;
    let mut saved = load_credentials()?.unwrap_or_default();
    saved.token.clear();
    save_credentials(&saved)?;
    println!("logged out of {}", client.url);
    Ok(())
}

/// What `paasm user` does.
#[derive(Debug, Clone)]
pub enum UserCommand {
    Create {
        username: String,
        credit: Option<i64>,
        admin: bool,
        password_stdin: bool,
    },
    Credit {
        username: Option<String>,
        add: Option<i64>,
    },
    List,
}

pub async fn user(common: &Common, command: UserCommand) -> Result<()> {
    let client = Client::new(common)?;
    match command {
        UserCommand::Create {
            username,
            credit,
            admin,
            password_stdin,
        } => {
            let password = read_password(&format!("password for {username}: "), password_stdin)?;
            let mut params = json!({"username": username, "password": password});
            if let Some(credit) = credit {
                params["credit"] = json!(credit);
            }
            if admin {
                params["admin"] = json!(true);
            }
            let user = client.call("user.create", params).await?;
            print(common, &user, || {
                format!(
                    "created user {} with credit {}{}",
                    user["username"].as_str().unwrap_or_default(),
                    user["credit"],
                    if user["admin"] == true {
                        " (administrator)"
                    } else {
                        ""
                    }
                )
            })
        }
        UserCommand::Credit { username, add } => {
            client.require_login()?;
            if let Some(amount) = add {
                let username = username.context("--add needs the USERNAME whose credit changes")?;
                let user = client
                    .call(
                        "user.add_credit",
                        json!({"username": username, "amount": amount}),
                    )
                    .await?;
                return print(common, &user, || {
                    format!("{username} has {} credit", user["credit"])
                });
            }
            let mut params = json!({});
            if let Some(name) = &username {
                params["username"] = json!(name);
            }
            let reply = client.call("user.credit", params).await?;
            print(common, &reply, || {
                let mut out = format!(
                    "{} has {} credit",
                    reply["user"]["username"].as_str().unwrap_or_default(),
                    reply["user"]["credit"]
                );
                for entry in reply["ledger"].as_array().into_iter().flatten().take(10) {
                    out.push_str(&format!(
                        "\n  {:>6} -> {:>6}  {}",
                        entry["amount"],
                        entry["balance"],
                        entry["reason"].as_str().unwrap_or("")
                    ));
                }
                out
            })
        }
        UserCommand::List => {
            client.require_login()?;
            let users = client.call("user.list", json!({})).await?;
            print(common, &users, || {
                let mut out = format!("{:<24} {:>8}  ADMIN", "USERNAME", "CREDIT");
                for u in users.as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "\n{:<24} {:>8}  {}",
                        u["username"].as_str().unwrap_or(""),
                        u["credit"],
                        if u["admin"] == true { "yes" } else { "" }
                    ));
                }
                out
            })
        }
    }
}

/// What `paasm service` does through the frontend.
#[derive(Debug, Clone)]
pub enum ServiceCommand {
    Catalogue,
    Create {
        service_type: String,
        cloud: Option<String>,
        name: Option<String>,
    },
    List,
    Info {
        sid: i64,
    },
    Start {
        sid: i64,
        cloud: Option<String>,
    },
    Stop {
        sid: i64,
    },
    Terminate {
        sid: i64,
    },
    AddNodes {
        sid: i64,
        count: i64,
        cloud: Option<String>,
        role: Option<String>,
    },
    RemoveNodes {
        sid: i64,
        count: i64,
    },
    Logs {
        sid: i64,
    },
    Nodes {
        sid: i64,
    },
    Rename {
        sid: i64,
        name: String,
    },
}

pub async fn service(common: &Common, command: ServiceCommand) -> Result<bool> {
    let client = Client::new(common)?;
    if !matches!(command, ServiceCommand::Catalogue) {
        client.require_login()?;
    }
    let manager = |sid: i64, method: &str, params: Value| json!({"sid": sid, "method": method, "params": params});
    let (sid, reply) = match command {
        ServiceCommand::Catalogue => {
            let entries = client.call("catalogue", json!({})).await?;
            print(common, &entries, || {
                let mut out = format!(
                    "{:<16} {:<10} {:<20} {:<20} DESCRIPTION",
                    "NAME", "VERSION", "DIGEST", "SIGNER"
                );
                // Digests and key ids are long: the first 12 hex digits name them here
                // (`--json` gives them whole).
                let short = |v: &Value| match v.as_str() {
                    Some(d) => d.chars().take(19).collect::<String>(),
                    None => "-".into(),
                };
                for e in entries.as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "\n{:<16} {:<10} {:<20} {:<20} {}",
                        e["name"].as_str().unwrap_or(""),
                        e["version"].as_str().unwrap_or(""),
                        short(&e["digest"]),
                        short(&e["signer"]),
                        e["description"].as_str().unwrap_or("")
                    ));
                }
                out
            })?;
            return Ok(true);
        }
        ServiceCommand::List => {
            let services = client.call("service.list", json!({})).await?;
            print(common, &services, || {
                let mut out = format!(
                    "{:>4}  {:<20} {:<12} {:<9} {:<8} REASON",
                    "SID", "NAME", "TYPE", "STATE", "CLOUD"
                );
                for s in services.as_array().into_iter().flatten() {
                    out.push_str(&format!(
                        "\n{:>4}  {:<20} {:<12} {:<9} {:<8} {}",
                        s["sid"],
                        s["name"].as_str().unwrap_or(""),
                        s["type"].as_str().unwrap_or(""),
                        s["state"].as_str().unwrap_or(""),
                        s["cloud"].as_str().unwrap_or(""),
                        s["reason"].as_str().unwrap_or("")
                    ));
                }
                out
            })?;
            return Ok(true);
        }
        ServiceCommand::Info { sid } => {
            let service = client.call("service.get", json!({"sid": sid})).await?;
            print(common, &service, || describe(&service))?;
            return Ok(true);
        }
        ServiceCommand::Logs { sid } => {
            let log = client
                .call("service.call", manager(sid, "getLog", json!({})))
                .await?;
            print(common, &log, || {
                log["log"]
                    .as_str()
                    .unwrap_or_default()
                    .trim_end()
                    .to_string()
            })?;
            return Ok(true);
        }
        ServiceCommand::Nodes { sid } => {
            let nodes = client
                .call("service.call", manager(sid, "list_nodes", json!({})))
                .await?;
            print(common, &nodes, || {
                let mut out = String::from("ROLE         NODES");
                for (role, ids) in nodes.as_object().into_iter().flatten() {
                    let ids: Vec<String> = ids
                        .as_array()
                        .into_iter()
                        .flatten()
                        .map(|i| i.as_str().map(str::to_string).unwrap_or(i.to_string()))
                        .collect();
                    out.push_str(&format!("\n{role:<12} {}", ids.join(" ")));
                }
                out
            })?;
            return Ok(true);
        }
        ServiceCommand::Rename { sid, name } => {
            let service = client
                .call("service.rename", json!({"sid": sid, "name": name}))
                .await?;
            print(common, &service, || describe(&service))?;
            return Ok(true);
        }
        ServiceCommand::Terminate { sid } => {
            let spinner = spinner(common, format!("terminating service {sid}"));
            let reply = client.call("service.terminate", json!({"sid": sid})).await;
            if let Some(bar) = spinner {
                bar.finish_and_clear();
            }
            let reply = reply?;
            print(common, &reply, || format!("service {sid} terminated"))?;
            return Ok(true);
        }
        ServiceCommand::Create {
            service_type,
            cloud,
            name,
        } => {
            let mut params = json!({"type": service_type});
            if let Some(cloud) = cloud {
                params["cloud"] = json!(cloud);
            }
            if let Some(name) = name {
                params["name"] = json!(name);
            }
            let service = client.call("service.create", params).await?;
            let sid = service["sid"].as_i64().context("the reply has no sid")?;
            if !common.json {
                eprintln!("created service {sid}");
            }
            (sid, service)
        }
        ServiceCommand::Start { sid, cloud } => {
            let mut params = json!({});
            if let Some(cloud) = cloud {
                params["cloud"] = json!(cloud);
            }
            let reply = client
                .call("service.call", manager(sid, "startup", params))
                .await?;
            (sid, reply)
        }
        ServiceCommand::Stop { sid } => {
            let reply = client
                .call("service.call", manager(sid, "shutdown", json!({})))
                .await?;
            (sid, reply)
        }
        ServiceCommand::AddNodes {
            sid,
            count,
            cloud,
            role,
        } => {
            let mut params = json!({"count": count});
            if let Some(cloud) = cloud {
                params["cloud"] = json!(cloud);
            }
            if let Some(role) = role {
                params["role"] = json!(role);
            }
            let reply = client
                .call("service.call", manager(sid, "add_nodes", params))
                .await?;
            (sid, reply)
        }
        ServiceCommand::RemoveNodes { sid, count } => {
            let reply = client
                .call(
                    "service.call",
                    manager(sid, "remove_nodes", json!({"count": count})),
                )
                .await?;
            (sid, reply)
        }
    };
    let _ = reply;
    let service = wait_until_stable(&client, common, sid).await?;
    print(common, &service, || describe(&service))?;
    Ok(service["state"] != "ERROR")
}

/// Polls `service.get` until the service is in a stable state, with a spinner.
async fn wait_until_stable(client: &Client, common: &Common, sid: i64) -> Result<Value> {
    let bar = spinner(common, format!("service {sid}"));
    let started = Instant::now();
    let result = loop {
        let service = match client.call("service.get", json!({"sid": sid})).await {
            Ok(s) => s,
            Err(e) => break Err(e),
        };
        let state = service["state"].as_str().unwrap_or_default().to_string();
        if !TRANSIENT.contains(&state.as_str()) {
            break Ok(service);
        }
        if started.elapsed() > common.timeout {
            break Err(anyhow::anyhow!(
                "service {sid} is still {state} after {} s",
                common.timeout.as_secs()
            ));
        }
        if let Some(bar) = &bar {
            bar.set_message(format!(
                "service {sid}: {state} ({:.0} s)",
                started.elapsed().as_secs_f64()
            ));
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    };
    if let Some(bar) = bar {
        bar.finish_and_clear();
    }
    result
}

fn spinner(common: &Common, message: String) -> Option<indicatif::ProgressBar> {
    common.progress.then(|| {
        let bar = indicatif::ProgressBar::new_spinner();
        bar.enable_steady_tick(Duration::from_millis(100));
        bar.set_message(message);
        bar
    })
}

fn describe(s: &Value) -> String {
    let mut out = format!(
        "service {} ({}, {}): {}",
        s["sid"],
        s["name"].as_str().unwrap_or(""),
        s["type"].as_str().unwrap_or(""),
        s["state"].as_str().unwrap_or("")
    );
    if s["reachable"] == false {
        out.push_str(" (manager unreachable)");
    }
    if let Some(reason) = s["reason"].as_str().filter(|r| !r.is_empty()) {
        out.push_str(&format!("\nreason: {reason}"));
    }
    if let Some(manager) = s["manager"].as_str().filter(|m| !m.is_empty()) {
        out.push_str(&format!(
            "\nmanager: {manager} on cloud {}",
            s["cloud"].as_str().unwrap_or("")
        ));
    }
    out
}

fn print(common: &Common, value: &Value, text: impl FnOnce() -> String) -> Result<()> {
    if common.json {
        println!("{}", serde_json::to_string_pretty(value)?);
    } else {
        println!("{}", text());
    }
    Ok(())
}

/// `paasm call SID METHOD [PARAMS]`: any manager method of one of the user's services.
pub async fn call(
    common: &Common,
    sid: i64,
    method: &str,
    params: Map<String, Value>,
) -> Result<()> {
    let client = Client::new(common)?;
    client.require_login()?;
    let result = client
        .call(
            "service.call",
            json!({"sid": sid, "method": method, "params": params}),
        )
        .await?;
    println!("{}", serde_json::to_string_pretty(&result)?);
    Ok(())
}
