//! What the frontend does for its users: accounts and credit, and the services they create.
//!
//! Creating a service charges its creation (as the original did), starts a manager node on
//! the service's cloud from the manager contextualization with the frontend's `%VAR%` layer
//! (service id, type, cloud, the frontend's URL and the service's callback secret), and keeps
//! the service PREINIT until its manager answers; a manager that does not answer within the
//! fail-out time leaves the service ERROR with the reason. From then on the manager owns the
//! service's state: the frontend asks it (`get_service_info`) whenever a client looks, and
//! records what it says. Terminating shuts the service down through its manager, kills the
//! manager node (and, on the local cloud, anything the manager left behind) and removes it.
//!
//! Managers call back with the per-service secret as a bearer token: node time is charged to
//! the owner's credit in the ledger, and when the credit runs out every service of the owner
//! is shut down with the reason recorded.

use std::collections::{BTreeMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, Result, bail};
use serde::Serialize;
use serde_json::{Map, Value, json};

use super::api::{
    ApiError, FORBIDDEN, MANAGER_ERROR, MANAGER_UNREACHABLE, NOT_FOUND, UNAUTHORIZED, token_hash,
};
use super::auth;
use super::store::{NewService, Service, ServiceUpdate, Store, StoreError, User};
use super::{FrontendOptions, now};
use crate::config::IniConfig;
use crate::iaas::cloud::Cloud;
use crate::iaas::context::{Role, substitute_percent};
use crate::iaas::local::LocalCloud;
use crate::rpc::Verb;
use crate::rpc::client::{self, ClientError};
use crate::service::package::ServicePackage;

/// The state of a service whose manager has not answered yet.
pub const PREINIT: &str = "PREINIT";
/// States the service passes through on its way to a stable one.
const TRANSIENT: [&str; 4] = [PREINIT, "PROLOGUE", "ADAPTING", "EPILOGUE"];
/// How the reason of a service shut down for lack of credit begins.
const CREDIT_EXHAUSTED: &str = "credit exhausted";
/// How long one call to a manager may take.
const MANAGER_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a probe of a manager's state may take (clients wait on it).
const PROBE_TIMEOUT: Duration = Duration::from_secs(3);
/// How long terminating waits for a manager to release its nodes.
const SHUTDOWN_WAIT: Duration = Duration::from_secs(120);

/// A service as clients see it.
#[derive(Debug, Clone, Serialize)]
pub struct ServiceView {
    pub sid: i64,
    pub name: String,
    #[serde(rename = "type")]
    pub service_type: String,
    pub state: String,
    pub reason: String,
    /// Whether the manager answered the last time the frontend asked.
    pub reachable: bool,
    /// Whether the state is one the service passes through (clients poll until it ends).
    pub transient: bool,
    pub manager: String,
    pub cloud: String,
    pub owner: i64,
    pub created: i64,
    pub changed: i64,
}

impl ServiceView {
    fn new(s: Service, reachable: bool) -> Self {
        Self {
            transient: TRANSIENT.contains(&s.state.as_str()),
            sid: s.id,
            name: s.name,
            service_type: s.service_type,
            state: s.state,
            reason: s.reason,
            reachable,
            manager: s.manager,
            cloud: s.cloud,
            owner: s.owner,
            created: s.created,
            changed: s.changed,
        }
    }
}

/// A cloud the frontend starts manager nodes on.
struct CloudEntry {
    cloud: Arc<LocalCloud>,
    base: PathBuf,
}

/// The frontend's state: its store, clouds and the services it is watching.
pub struct Frontend {
    pub(crate) store: Store,
    options: FrontendOptions,
    clouds: BTreeMap<String, CloudEntry>,
    /// `FRONTEND_URL`: where managers call back.
    url: String,
    /// Services with a task waiting for their manager to answer.
    watching: Mutex<HashSet<i64>>,
}

impl Frontend {
    /// Opens the store and the clouds (taking over the manager nodes a previous frontend
    /// started) and resumes waiting for the managers of services still PREINIT.
    pub async fn open(options: FrontendOptions, url: String) -> Result<Arc<Self>> {
        let store = Store::open(&options.database)
            .await
            .with_context(|| format!("cannot open the database {}", options.database))?;
        let clouds = open_clouds(&options)?;
        let frontend = Arc::new(Self {
            store,
            options,
            clouds,
            url,
            watching: Mutex::new(HashSet::new()),
        });
        for service in frontend.store.services(None).await? {
            if service.state == PREINIT {
                frontend.watch(service.id);
            }
        }
        Ok(frontend)
    }

    /// The clouds services can be created on, the default first.
    pub fn cloud_names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.clouds.keys().cloned().collect();
        if let Some(i) = names.iter().position(|n| n == "local") {
            let local = names.remove(i);
            names.insert(0, local);
        }
        names
    }

    /// The installed service packages.
    pub fn catalogue(&self) -> Vec<crate::service::package::CatalogueEntry> {
        let (entries, problems) = crate::service::package::catalogue(&self.options.services_dir);
        for problem in problems {
            tracing::warn!("catalogue: {problem}");
        }
        entries
    }

    /// What a manager node on this machine asks the frontend for as it boots (see
    /// `config/scripts/manager/manager-setup`): the paths of the binary, the service packages
    /// and the configuration tree.
    pub fn code_file(&self, name: &str) -> Option<String> {
        let path = match name {
            "paasm-path" => std::env::current_exe().ok()?,
            "services-path" => self.options.services_dir.clone(),
            "config-path" => self.options.config_dir.clone(),
            _ => return None,
        };
        Some(format!("{}\n", path.display()))
    }

    // ---- users -------------------------------------------------------------------------

    pub async fn authenticate(&self, token: &str) -> Result<User, ApiError> {
        self.store
            .user_by_token(
                &token_hash(token),
                now() - self.options.token_lifetime.as_secs() as i64,
            )
            .await?
            .ok_or_else(|| ApiError::new(UNAUTHORIZED, "unknown or expired token: log in again"))
    }

    pub async fn login(&self, username: &str, password: &str) -> Result<(String, User), ApiError> {
        let user = self.store.user_by_name(username).await?;
        // Verify against a real hash even for unknown users, so timing does not tell them apart.
        let stored = user.as_ref().map(|u| u.password_hash.clone());
        let password = password.to_string();
        let ok = tokio::task::spawn_blocking(move || match &stored {
            Some(hash) => auth::verify_password(&password, hash),
            None => auth::verify_password(&password, dummy_hash()),
        })
        .await
        .unwrap_or(false);
        let Some(user) = user.filter(|_| ok) else {
            return Err(ApiError::new(
                UNAUTHORIZED,
                "username and password don't match",
            ));
        };
        let token = auth::new_secret().map_err(ApiError::internal)?;
        self.store
            .add_token(user.id, &token_hash(&token), now())
            .await?;
        Ok((token, user))
    }

    pub async fn logout(&self, token: &str) -> Result<(), ApiError> {
        self.store.remove_token(&token_hash(token)).await?;
        Ok(())
    }

    pub async fn user_named(&self, username: &str) -> Result<User, ApiError> {
        self.store
            .user_by_name(username)
            .await?
            .ok_or_else(|| ApiError::new(NOT_FOUND, format!("no user {username:?}")))
    }

    /// Creates a user: the first one (who becomes an administrator) by anyone, the others by
    /// an administrator, or by anyone with open registration (never as an administrator).
    pub async fn create_user(
        &self,
        caller: Option<&User>,
        username: &str,
        password: &str,
        credit: Option<i64>,
        admin: bool,
    ) -> Result<User, ApiError> {
        check_username(username)?;
        if password.chars().count() < 8 {
            return Err(ApiError::param(
                "password",
                "password must have at least 8 characters",
            ));
        }
        if let Some(c) = credit
            && c < 0
        {
            return Err(ApiError::param(
                "credit",
                format!("credit must be 0 or more, found {c}"),
            ));
        }
        let first = self.store.user_count().await? == 0;
        let by_admin = caller.is_some_and(|c| c.admin);
        if !first && !by_admin {
            if !self.options.open_registration {
                return Err(ApiError::new(
                    FORBIDDEN,
                    "only an administrator creates users on this frontend",
                ));
            }
            if admin || credit.is_some() {
                return Err(ApiError::new(
                    FORBIDDEN,
                    "only an administrator sets a new user's credit or makes administrators",
                ));
            }
        }
        let password = password.to_string();
        let hash = tokio::task::spawn_blocking(move || auth::hash_password(&password))
            .await
            .map_err(ApiError::internal)?
            .map_err(ApiError::internal)?;
        let credit = credit.unwrap_or(self.options.initial_credit);
        let user = self
            .store
            .create_user(username, &hash, first || admin, credit, now())
            .await?;
        tracing::info!(username, admin = user.admin, credit, "user created");
        Ok(user)
    }

    /// An administrator gives (or, with a negative amount, takes) credit.
    pub async fn add_credit(&self, by: &User, to: &User, amount: i64) -> Result<i64, ApiError> {
        if amount == 0 {
            return Err(ApiError::param("amount", "amount must not be 0"));
        }
        let reason = format!("credit from {}", by.username);
        Ok(self
            .store
            .adjust_credit(to.id, amount, None, &reason, now())
            .await?)
    }

    // ---- services ----------------------------------------------------------------------

    /// The service `sid` if `user` owns it (administrators see every service).
    pub async fn owned_service(&self, user: &User, sid: i64) -> Result<Service, ApiError> {
        match self.store.service(sid).await? {
            Some(s) if s.owner == user.id || user.admin => Ok(s),
            Some(_) => Err(ApiError::new(
                FORBIDDEN,
                format!("service {sid} is not yours"),
            )),
            None => Err(ApiError::new(NOT_FOUND, format!("no service {sid}"))),
        }
    }

    /// The user's services as stored (clients ask `service.get` for a fresh state).
    pub async fn list_services(&self, user: &User) -> Result<Vec<ServiceView>, ApiError> {
        let owner = (!user.admin).then_some(user.id);
        let services = self.store.services(owner).await?;
        Ok(services
            .into_iter()
            .map(|s| {
                let reachable = s.state != PREINIT && s.state != "ERROR";
                ServiceView::new(s, reachable)
            })
            .collect())
    }

    pub async fn create_service(
        self: &Arc<Self>,
        user: &User,
        service_type: &str,
        cloud: Option<&str>,
        name: Option<&str>,
    ) -> Result<ServiceView, ApiError> {
        let package = ServicePackage::find(&self.options.services_dir, service_type)
            .map_err(|e| ApiError::param("type", e.to_string()))?;
        self.options
            .trust_policy
            .admits(&package.name, package.origin().as_ref())
            .map_err(|e| ApiError::param("type", e))?;
        let cloud = match cloud {
            Some(c) if self.clouds.contains_key(c) => c.to_string(),
            Some(c) => {
                return Err(ApiError::param(
                    "cloud",
                    format!(
                        "unknown cloud {c:?}; this frontend has: {}",
                        self.cloud_names().join(", ")
                    ),
                ));
            }
            None => self
                .cloud_names()
                .into_iter()
                .next()
                .ok_or_else(|| ApiError::internal("this frontend has no cloud configured"))?,
        };
        let name = match name {
            Some(n) => {
                check_service_name(n)?;
                n.to_string()
            }
            None => package.name.clone(),
        };
        let secret = auth::new_secret().map_err(ApiError::internal)?;
        let service = self
            .store
            .create_service(
                NewService {
                    name,
                    service_type: package.name.clone(),
                    cloud: cloud.clone(),
                    owner: user.id,
                    secret_hash: auth::secret_hash(&secret),
                },
                self.options.create_charge,
                now(),
            )
            .await?;
        let sid = service.id;
        tracing::info!(sid, service = %package.name, %cloud, user = %user.username, "creating a service");
        match self.start_manager(&package, &service, &secret).await {
            Ok((vmid, manager)) => {
                let update = ServiceUpdate {
                    vmid: Some(vmid),
                    manager: Some(manager),
                    ..ServiceUpdate::default()
                };
                let service = self
                    .store
                    .update_service(sid, update, now())
                    .await?
                    .ok_or_else(|| ApiError::internal(format!("service {sid} vanished")))?;
                self.watch(sid);
                Ok(ServiceView::new(service, false))
            }
            Err(e) => {
                let reason = format!("cannot start the manager: {e:#}");
                tracing::warn!(sid, "{reason}");
                if self.options.create_charge > 0 {
                    self.store
                        .adjust_credit(
                            user.id,
                            self.options.create_charge,
                            Some(sid),
                            &format!("refund: service {sid} could not start"),
                            now(),
                        )
                        .await?;
                }
                let service = self.set_state(sid, "ERROR", &reason).await?;
                Ok(ServiceView::new(service, false))
            }
        }
    }

    /// Boots a manager node for `service`; returns its vmid and URL.
    async fn start_manager(
        &self,
        package: &ServicePackage,
        service: &Service,
        secret: &str,
    ) -> Result<(String, String)> {
        let entry = self
            .clouds
            .get(&service.cloud)
            .with_context(|| format!("unknown cloud {}", service.cloud))?;
        let tree = package.config_tree(&self.options.config_dir)?;
        let script = tree.script(Role::Manager, &package.name, &service.cloud)?;
        let sid = service.id;
        let vars: BTreeMap<String, String> = [
            ("CONPAAS_SERVICE_TYPE", package.name.clone()),
            ("CONPAAS_SERVICE_ID", sid.to_string()),
            ("CLOUD", service.cloud.clone()),
            ("FRONTEND_URL", self.url.clone()),
            ("FRONTEND_SECRET", secret.to_string()),
            ("CREDIT_PERIOD", self.options.credit_period.to_string()),
            ("MANAGER_PORT", self.options.manager_port.to_string()),
            // Each service's agents get their own loopback network on the local cloud.
            (
                "LOOPBACK_PREFIX",
                format!("127.{}.{}", 1 + sid / 250 % 250, 1 + sid % 250),
            ),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect();
        let script = substitute_percent(&script, &vars);
        let cloud = entry.cloud.clone();
        let instances = tokio::task::spawn_blocking(move || cloud.new_instances(1, &script))
            .await
            .context("the cloud driver panicked")??;
        let instance = instances
            .into_iter()
            .next()
            .context("the cloud started no node")?;
        let url = format!("http://{}:{}", instance.ip, self.options.manager_port);
        tracing::info!(sid, vmid = %instance.vmid, %url, "manager node started");
        Ok((instance.vmid, url))
    }

    /// Waits in the background for the manager of `sid` to answer (or the fail-out time).
    fn watch(self: &Arc<Self>, sid: i64) {
        if !self
            .watching
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .insert(sid)
        {
            return;
        }
        let fe = self.clone();
        tokio::spawn(async move {
            fe.wait_for_manager(sid).await;
            fe.watching
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .remove(&sid);
        });
    }

    async fn wait_for_manager(self: &Arc<Self>, sid: i64) {
        let started = Instant::now();
        loop {
            let service = match self.store.service(sid).await {
                Ok(Some(s)) if s.state == PREINIT => s,
                Ok(_) => return,
                Err(e) => {
                    tracing::warn!(sid, "cannot read the service: {e}");
                    tokio::time::sleep(Duration::from_secs(1)).await;
                    continue;
                }
            };
            if self.probe(&service).await.is_ok() {
                return;
            }
            let age = Duration::from_secs(now().saturating_sub(service.created).max(0) as u64);
            if age.max(started.elapsed()) >= self.options.failout {
                let reason = format!(
                    "the manager did not answer within {} s of the service's creation; its node was stopped",
                    self.options.failout.as_secs()
                );
                tracing::warn!(sid, "{reason}");
                self.kill_manager(&service).await;
                let _ = self.set_state(sid, "ERROR", &reason).await;
                return;
            }
            tokio::time::sleep(Duration::from_millis(300)).await;
        }
    }

    /// Asks the manager for its state and records it; the stored row afterwards.
    async fn probe(&self, service: &Service) -> Result<Service, ClientError> {
        let addr = manager_addr(service).map_err(|e| ClientError::Remote(e.to_string()))?;
        let info = client::call(
            addr,
            Verb::Get,
            "get_service_info",
            &Map::new(),
            PROBE_TIMEOUT,
        )
        .await?;
        let state = info["state"].as_str().unwrap_or_default().to_string();
        if state.is_empty() || state == service.state {
            return Ok(service.clone());
        }
        // A new state: keep the manager's reason for it (an ERROR's cause, a shutdown's).
        let reason = match client::call(
            addr,
            Verb::Get,
            "get_service_history",
            &Map::new(),
            PROBE_TIMEOUT,
        )
        .await
        {
            Ok(history) => history["state_log"]
                .as_array()
                .and_then(|log| log.last())
                .and_then(|last| last["reason"].as_str())
                .unwrap_or_default()
                .to_string(),
            Err(_) => String::new(),
        };
        let reason = if state == "STOPPED" && service.reason.starts_with(CREDIT_EXHAUSTED) {
            // The frontend's reason for the shutdown it asked for.
            service.reason.clone()
        } else {
            reason
        };
        Ok(self
            .set_state(service.id, &state, &reason)
            .await
            .unwrap_or_else(|_| service.clone()))
    }

    async fn set_state(&self, sid: i64, state: &str, reason: &str) -> Result<Service, ApiError> {
        let update = ServiceUpdate {
            state: Some(state.to_string()),
            reason: Some(reason.to_string()),
            ..ServiceUpdate::default()
        };
        self.store
            .update_service(sid, update, now())
            .await?
            .ok_or_else(|| ApiError::new(NOT_FOUND, format!("no service {sid}")))
    }

    /// The service with its manager's current state.
    pub async fn refresh(&self, service: Service) -> Result<ServiceView, ApiError> {
        if service.manager.is_empty() || service.state == "ERROR" && service.vmid.is_empty() {
            return Ok(ServiceView::new(service, false));
        }
        match self.probe(&service).await {
            Ok(service) => Ok(ServiceView::new(service, true)),
            Err(e) => {
                tracing::debug!(sid = service.id, "manager unreachable: {e}");
                Ok(ServiceView::new(service, false))
            }
        }
    }

    pub async fn rename(&self, service: Service, name: &str) -> Result<ServiceView, ApiError> {
        check_service_name(name)?;
        let update = ServiceUpdate {
            name: Some(name.to_string()),
            ..ServiceUpdate::default()
        };
        let service = self
            .store
            .update_service(service.id, update, now())
            .await?
            .ok_or_else(|| ApiError::new(NOT_FOUND, format!("no service {}", service.id)))?;
        Ok(ServiceView::new(service, true))
    }

    /// The manager's OpenRPC document.
    pub async fn discover(&self, service: &Service) -> Result<Value, ApiError> {
        let addr = manager_addr(service)?;
        client::call(
            addr,
            Verb::Get,
            crate::rpc::DISCOVER,
            &Map::new(),
            MANAGER_TIMEOUT,
        )
        .await
        .map_err(manager_error)
    }

    /// Calls a manager method for its owner, with the verb the manager declares for it.
    /// `files` (`{FIELD: {name, content_base64}}`) go to an UPLOAD method as file fields.
    pub async fn call(
        &self,
        service: &Service,
        method: &str,
        params: Map<String, Value>,
        files: Map<String, Value>,
    ) -> Result<Value, ApiError> {
        let document = self.discover(service).await?;
        let methods = document["methods"].as_array().cloned().unwrap_or_default();
        let Some(entry) = methods.iter().find(|m| m["name"] == method) else {
            let mut names: Vec<&str> = methods.iter().filter_map(|m| m["name"].as_str()).collect();
            names.sort_unstable();
            return Err(ApiError::param(
                "method",
                format!(
                    "the {} manager has no method {method:?}; it serves: {}",
                    service.service_type,
                    names.join(", ")
                ),
            ));
        };
        let addr = manager_addr(service)?;
        let verb = match entry["x-verb"].as_str() {
            Some("GET") => Verb::Get,
            Some("POST") => Verb::Post,
            Some("UPLOAD") => Verb::Upload,
            other => {
                return Err(ApiError::internal(format!(
                    "the manager describes {method} with an unknown verb {other:?}"
                )));
            }
        };
        if verb != Verb::Upload {
            if let Some(field) = files.keys().next() {
                return Err(ApiError::param(
                    &format!("files.{field}"),
                    format!("{method} is not an UPLOAD method: it takes no files"),
                ));
            }
            return client::call(addr, verb, method, &params, MANAGER_TIMEOUT)
                .await
                .map_err(manager_error);
        }
        let mut uploads = Vec::new();
        for (field, file) in files {
            let at = format!("files.{field}");
            let name = file["name"].as_str().unwrap_or(&field).to_string();
            let content = file["content_base64"].as_str().ok_or_else(|| {
                ApiError::param(&at, format!("{at} must be {{name, content_base64}}"))
            })?;
            use base64::Engine as _;
            let data = base64::engine::general_purpose::STANDARD
                .decode(content)
                .map_err(|e| {
                    ApiError::param(&at, format!("{at}.content_base64 is not base64: {e}"))
                })?;
            uploads.push(client::UploadFile {
                field,
                filename: name,
                data: data.into(),
            });
        }
        client::upload(addr, method, &params, uploads, MANAGER_TIMEOUT)
            .await
            .map_err(manager_error)
    }

    /// Shuts the service down through its manager (waiting until its nodes are gone), kills
    /// the manager node and removes the service.
    pub async fn terminate(&self, service: Service, why: &str) -> Result<(), ApiError> {
        let sid = service.id;
        tracing::info!(sid, "terminating: {why}");
        if let Ok(addr) = manager_addr(&service)
            && let Err(e) = self.shut_down(addr, SHUTDOWN_WAIT).await
        {
            tracing::warn!(sid, "the manager did not shut down cleanly: {e:#}");
        }
        self.kill_manager(&service).await;
        self.store.delete_service(sid).await?;
        tracing::info!(sid, "terminated");
        Ok(())
    }

    /// Asks the manager to release its nodes and waits until it is stable and nodeless.
    async fn shut_down(&self, addr: SocketAddr, wait: Duration) -> Result<()> {
        let info = |addr| async move {
            client::call(
                addr,
                Verb::Get,
                "get_service_info",
                &Map::new(),
                PROBE_TIMEOUT,
            )
            .await
        };
        let state = info(addr).await?["state"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        if matches!(
            state.as_str(),
            "RUNNING" | "PROLOGUE" | "ADAPTING" | "ERROR"
        ) {
            // ERROR services may still hold nodes; shutdown releases them.
            if let Err(e) =
                client::call(addr, Verb::Post, "shutdown", &Map::new(), MANAGER_TIMEOUT).await
            {
                tracing::info!("shutdown: {e}");
            }
        }
        let deadline = Instant::now() + wait;
        loop {
            let state = info(addr).await?["state"]
                .as_str()
                .unwrap_or_default()
                .to_string();
            if !TRANSIENT.contains(&state.as_str()) {
                return Ok(());
            }
            if Instant::now() > deadline {
                bail!("still {state} after {} s", wait.as_secs());
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    /// Kills the manager node and, on the local cloud, any node it left behind.
    async fn kill_manager(&self, service: &Service) {
        let Some(entry) = self.clouds.get(&service.cloud) else {
            return;
        };
        if service.vmid.is_empty() {
            return;
        }
        let cloud = entry.cloud.clone();
        let node_dir = entry.base.join(&service.vmid);
        let vmid = service.vmid.clone();
        let sid = service.id;
        let _ = tokio::task::spawn_blocking(move || {
            // The manager's own nodes: where its configuration says it records them.
            let config = IniConfig::load(&node_dir.join("config.cfg")).ok();
            let nodes_dir = config.as_ref().and_then(|c| {
                c.get("manager", "NODES_DIR")
                    .map(PathBuf::from)
                    .or_else(|| {
                        c.get("manager", "VAR_CACHE")
                            .map(|v| PathBuf::from(v).join("nodes"))
                    })
            });
            if let Err(e) = cloud.kill_instance(&vmid) {
                tracing::warn!(sid, "cannot kill the manager node: {e}");
            }
            if let Some(dir) = nodes_dir {
                // One directory per cloud of the manager, each holding its nodes.
                let left: usize = std::fs::read_dir(&dir)
                    .into_iter()
                    .flatten()
                    .flatten()
                    .map(|cloud| crate::iaas::local::kill_all(&cloud.path()))
                    .sum();
                if left > 0 {
                    tracing::warn!(sid, nodes = left, "killed nodes the manager left behind");
                }
            }
            if let Err(e) = std::fs::remove_dir_all(&node_dir)
                && e.kind() != std::io::ErrorKind::NotFound
            {
                tracing::warn!(sid, "cannot remove {}: {e}", node_dir.display());
            }
        })
        .await;
    }

    // ---- the managers' callbacks -------------------------------------------------------

    /// The service `sid` if `secret` is its callback secret.
    async fn calling_service(&self, sid: &str, secret: Option<&str>) -> Result<Service, String> {
        let sid: i64 = sid
            .trim()
            .parse()
            .map_err(|_| "Invalid arguments: sid must be an integer".to_string())?;
        let service = self
            .store
            .service(sid)
            .await
            .map_err(|e| format!("Internal error: {e}"))?;
        let allowed = match (&service, secret) {
            (Some(s), Some(secret)) => auth::same_hash(&auth::secret_hash(secret), &s.secret_hash),
            _ => false,
        };
        match service {
            Some(service) if allowed => Ok(service),
            _ => {
                tracing::warn!(sid, "refused a callback without the service's secret");
                Err("Not allowed".into())
            }
        }
    }

    /// `decrementUserCredit`: charges node time to the owner of the calling service.
    pub async fn credit_callback(
        self: &Arc<Self>,
        form: &BTreeMap<String, String>,
        secret: Option<&str>,
    ) -> Result<(), String> {
        let (Some(sid), Some(decrement)) = (form.get("sid"), form.get("decrement")) else {
            return Err("Missing arguments: sid and decrement".into());
        };
        let service = self.calling_service(sid, secret).await?;
        let decrement: i64 = decrement
            .trim()
            .parse()
            .ok()
            .filter(|d| *d >= 1)
            .ok_or("Invalid arguments: decrement must be an integer of at least 1")?;
        let reason = format!("node time of service {}", service.id);
        match self
            .store
            .adjust_credit(service.owner, -decrement, Some(service.id), &reason, now())
            .await
        {
            Ok(balance) => {
                tracing::info!(sid = service.id, decrement, balance, "charged node time");
                Ok(())
            }
            Err(StoreError::NotEnoughCredit { available, needed }) => {
                let fe = self.clone();
                tokio::spawn(async move { fe.credit_exhausted(service.owner).await });
                Err(format!(
                    "Not enough credit: {available} left, {needed} needed"
                ))
            }
            Err(e) => Err(format!("Internal error: {e}")),
        }
    }

    /// Shuts down every running service of a user whose credit ran out, recording why.
    async fn credit_exhausted(&self, owner: i64) {
        let services = match self.store.services(Some(owner)).await {
            Ok(s) => s,
            Err(e) => {
                tracing::error!(
                    owner,
                    "cannot list the services of a user out of credit: {e}"
                );
                return;
            }
        };
        for service in services {
            if matches!(service.state.as_str(), "STOPPED" | "ERROR" | "INIT") {
                continue;
            }
            let reason =
                format!("{CREDIT_EXHAUSTED}: its owner's credit ran out, so it was shut down");
            let _ = self.set_state(service.id, &service.state, &reason).await;
            tracing::warn!(sid = service.id, "{reason}");
            if let Ok(addr) = manager_addr(&service)
                && let Err(e) = self.shut_down(addr, SHUTDOWN_WAIT).await
            {
                tracing::warn!(sid = service.id, "shutdown after credit exhaustion: {e:#}");
            }
            if let Ok(Some(now)) = self.store.service(service.id).await {
                let _ = self.probe(&now).await;
            }
        }
    }

    /// `terminateService`: the manager asks to be terminated.
    pub async fn terminate_callback(
        self: &Arc<Self>,
        form: &BTreeMap<String, String>,
        secret: Option<&str>,
    ) -> Result<(), String> {
        let Some(sid) = form.get("sid") else {
            return Err("Missing arguments: sid".into());
        };
        let service = self.calling_service(sid, secret).await?;
        let fe = self.clone();
        // Terminating waits for the manager, which is waiting for this reply: in the background.
        tokio::spawn(async move {
            if let Err(e) = fe.terminate(service, "requested by its manager").await {
                tracing::warn!("terminate callback: {e}");
            }
        });
        Ok(())
    }
}

/// The clouds of the configuration tree (`cloud/<name>.cfg`) this build can drive.
fn open_clouds(options: &FrontendOptions) -> Result<BTreeMap<String, CloudEntry>> {
    let dir = options.config_dir.join("cloud");
    let entries = std::fs::read_dir(&dir)
        .with_context(|| format!("cannot read the clouds in {}", dir.display()))?;
    let mut clouds = BTreeMap::new();
    for entry in entries.flatten() {
        let path = entry.path();
        let Some(name) = path
            .file_name()
            .and_then(|n| n.to_str())
            .and_then(|n| n.strip_suffix(".cfg"))
        else {
            continue;
        };
        let text = std::fs::read_to_string(&path)
            .with_context(|| format!("cannot read {}", path.display()))?;
        let ini = IniConfig::parse(&text)
            .map_err(|e| anyhow::anyhow!("invalid {}: {e}", path.display()))?;
        let driver = ini
            .get("iaas", "DRIVER")
            .unwrap_or_default()
            .trim()
            .to_ascii_lowercase();
        if driver != "local" {
            tracing::warn!(cloud = name, %driver, "skipping a cloud whose driver this build lacks");
            continue;
        }
        let base = std::path::absolute(options.var.join("nodes").join(name))
            .context("cannot resolve the nodes directory")?;
        std::fs::create_dir_all(&base)
            .with_context(|| format!("cannot create {}", base.display()))?;
        let mut cloud = LocalCloud::new(name, &base);
        // The frontend's own nodes (managers) use 127.0.0.x, as a standalone manager does;
        // their agents get a network per service (LOOPBACK_PREFIX).
        if let Some(prefix) = ini.get("frontend", "LOOPBACK_PREFIX") {
            let prefix = crate::iaas::local::parse_prefix(prefix).map_err(|e| {
                anyhow::anyhow!("invalid LOOPBACK_PREFIX in {}: {e}", path.display())
            })?;
            cloud = cloud.with_prefix(prefix);
        }
        clouds.insert(
            name.to_string(),
            CloudEntry {
                cloud: Arc::new(cloud),
                base,
            },
        );
    }
    if clouds.is_empty() {
        bail!("no usable cloud in {}", dir.display());
    }
    Ok(clouds)
}

fn manager_addr(service: &Service) -> Result<SocketAddr, ApiError> {
    if service.manager.is_empty() {
        return Err(ApiError::new(
            MANAGER_UNREACHABLE,
            format!("service {} has no manager yet", service.id),
        ));
    }
    crate::cli::call::parse_server(&service.manager).map_err(ApiError::internal)
}

fn manager_error(e: ClientError) -> ApiError {
    match e {
        ClientError::Remote(message) => ApiError::new(MANAGER_ERROR, message),
        ClientError::Transport { .. } => ApiError::new(
            MANAGER_UNREACHABLE,
            format!("the manager did not answer: {e}"),
        ),
    }
}

/// A valid password hash that matches no password anyone types.
fn dummy_hash() -> &'static str {
    static HASH: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    HASH.get_or_init(|| {
        auth::hash_password(&auth::new_secret().unwrap_or_default()).unwrap_or_default()
    })
}

fn check_username(name: &str) -> Result<(), ApiError> {
    let ok = (1..=64).contains(&name.chars().count())
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '-' | '_' | '.' | '@'));
    if ok {
        Ok(())
    } else {
        Err(ApiError::param(
            "username",
            format!("invalid username {name:?}: 1 to 64 letters, digits, '-', '_', '.' or '@'"),
        ))
    }
}

fn check_service_name(name: &str) -> Result<(), ApiError> {
    let trimmed = name.trim();
    if trimmed.is_empty() || name.chars().count() > 64 || name.chars().any(char::is_control) {
        return Err(ApiError::param(
            "name",
            format!("invalid service name {name:?}: 1 to 64 printable characters"),
        ));
    }
    Ok(())
}

/// The JSON the original callbacks answered: `{"error": false}` or `{"error": true, "msg"}`.
pub fn callback_reply(result: &Result<(), String>) -> Value {
    match result {
        Ok(()) => json!({"error": false}),
        Err(msg) => json!({"error": true, "msg": msg}),
    }
}
