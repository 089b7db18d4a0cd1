//! The frontend: users, credits, the service catalogue, the web dashboard and the services
//! users create, each run by a manager the frontend starts on a cloud (the seed's third
//! entity).
//!
//! - [`store`]: the database (SQLite by default, PostgreSQL for several frontends).
//! - [`auth`]: passwords, API tokens, the per-service callback secrets.
//! - [`services`]: creating, following and terminating services; the managers' callbacks.
//! - [`api`]: the JSON-RPC 2.0 API the dashboard and the CLI speak.
//! - [`server`]: HTTP: `/api`, the callbacks at the original's paths, the dashboard's files.
//! - [`web`]: the dashboard's embedded files.

pub mod api;
pub mod auth;
pub mod server;
pub mod services;
pub mod store;
pub mod web;

use std::path::PathBuf;
use std::time::Duration;

/// What `paasm frontend` was asked to run.
#[derive(Debug, Clone)]
pub struct FrontendOptions {
    /// Address to listen on.
    pub listen: String,
    /// The database: a file path, `sqlite:PATH` or `postgres://...`.
    pub database: String,
    /// Where the frontend keeps its manager nodes (and, by default, its database).
    pub var: PathBuf,
    /// The configuration tree managers are contextualized from.
    pub config_dir: PathBuf,
    /// The installed service packages (the catalogue).
    pub services_dir: PathBuf,
    /// Directory for precompiled components (package checks).
    pub cache_dir: Option<PathBuf>,
    /// Credit a new user starts with unless the creator says otherwise.
    pub initial_credit: i64,
    /// Credit charged when a service is created (the original charged 1).
    pub create_charge: i64,
    /// Seconds of node time one credit buys (given to managers as `CREDIT_PERIOD`).
    pub credit_period: u64,
    /// How long a new service's manager may take to answer before the service is ERROR.
    pub failout: Duration,
    /// The port managers listen on, on their node's address.
    pub manager_port: u16,
    /// The address managers call back (`FRONTEND_URL`) [default: the listening address].
    pub public_url: Option<String>,
    /// How long an API token from `login` stays valid.
    pub token_lifetime: Duration,
    /// Anyone may create an account (the original's register form); otherwise only admins
    /// create users (and anyone creates the first one, which becomes an admin).
    pub open_registration: bool,
    /// Which installed packages may be used to create services (their origin and signer).
    pub trust_policy: crate::oci::policy::Policy,
}

impl FrontendOptions {
    /// Options with the defaults of `paasm frontend`, for the given directories.
    pub fn new(var: PathBuf, config_dir: PathBuf, services_dir: PathBuf) -> Self {
        Self {
            listen: DEFAULT_LISTEN.into(),
            database: var.join("frontend.sqlite").display().to_string(),
            var,
            config_dir,
            services_dir,
            cache_dir: None,
            initial_credit: 50,
            create_charge: 1,
            credit_period: 3600,
            failout: Duration::from_secs(600),
            manager_port: 80,
            public_url: None,
            token_lifetime: Duration::from_secs(30 * 24 * 3600),
            open_registration: false,
            trust_policy: crate::oci::policy::Policy::default(),
        }
    }
}

/// Where `paasm frontend` listens by default.
pub const DEFAULT_LISTEN: &str = "127.0.0.1:8080";

/// Current time in unix seconds.
pub(crate) fn now() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}
