//! The `paasm` command line: a thin layer over the library that parses arguments, sets up
//! logging and turns errors into messages and exit codes.

use std::collections::BTreeMap;
use std::io::IsTerminal;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use tracing_subscriber::EnvFilter;
use tracing_subscriber::fmt::writer::MakeWriterExt;

use paasm::config::IniConfig;
use paasm::engine::{
    CallLimits, InstancePolicy, Runtime, RuntimeOptions, default_cache_dir, digest,
};
use paasm::iaas::context::{ConfigTree, Role, substitute_dollar, substitute_percent};
use paasm::platform::{PlatformHost, StateStore};
use paasm::rpc::tls::TlsFiles;
use paasm::rpc::{Dispatcher, Threads};
use paasm::service::agent::{self, AgentOptions};
use paasm::service::manager::{self, ConfigSource, ManagerOptions};
use paasm::service::package::ServicePackage;

#[derive(Parser)]
#[command(
    name = "paasm",
    version,
    about = "WebAssembly-component plugin host for a cloud control plane"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Serve an agent component on this node (the seed's cpsagent).
    Agent {
        /// The agent's INI configuration file.
        #[arg(short, long, value_name = "FILE")]
        config: PathBuf,
        /// The agent component (.wasm).
        #[arg(long, value_name = "FILE.wasm")]
        component: PathBuf,
        /// Address to listen on; port 0 picks a free port.
        #[arg(short, long, value_name = "HOST:PORT", default_value = agent::DEFAULT_LISTEN)]
        listen: String,
        /// Directory for precompiled components [default: $PAASM_CACHE_DIR or ~/.cache/paasm].
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Require client certificates signed by this CA (PEM): mutual TLS.
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_client_ca: Option<PathBuf>,
        /// Threads that serve connections, each the connections handed to it, start to end
        /// [default: one per CPU].
        #[arg(long, value_name = "N")]
        threads: Option<std::num::NonZeroUsize>,
    },
    /// Serve a service's manager: its lifecycle, nodes and component (the seed's cpsmanager).
    #[command(group(clap::ArgGroup::new("source").required(true).args(["config", "service"])))]
    Manager {
        /// The manager's INI configuration file (as a frontend writes it).
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Assemble the configuration for this service from the configuration tree instead.
        #[arg(long, value_name = "NAME")]
        service: Option<String>,
        /// With --service: the cloud whose configuration and scripts are used.
        #[arg(long, default_value = "local", requires = "service")]
        cloud: String,
        /// With --service: where the manager keeps its configuration, database, log and nodes
        /// [default: var/<service>].
        #[arg(long = "var", value_name = "DIR", requires = "service")]
        var_dir: Option<PathBuf>,
        /// Address to listen on; port 0 picks a free port.
        #[arg(short, long, value_name = "HOST:PORT", default_value = manager::DEFAULT_LISTEN)]
        listen: String,
        /// The configuration tree [default: $PAASM_CONFIG_DIR or ./config].
        #[arg(long, value_name = "DIR")]
        config_dir: Option<PathBuf>,
        /// The installed service packages [default: $PAASM_SERVICES_DIR, ./services, or
        /// target/services in a checkout].
        #[arg(long, value_name = "DIR")]
        services_dir: Option<PathBuf>,
        /// Directory for precompiled components [default: $PAASM_CACHE_DIR or ~/.cache/paasm].
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Serve HTTPS with this certificate chain (PEM); needs --tls-key.
        #[arg(long, value_name = "FILE", requires = "tls_key")]
        tls_cert: Option<PathBuf>,
        /// The private key of --tls-cert (PEM).
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_key: Option<PathBuf>,
        /// Require client certificates signed by this CA (PEM): mutual TLS.
        #[arg(long, value_name = "FILE", requires = "tls_cert")]
        tls_client_ca: Option<PathBuf>,
    },
    /// Serve the resource engine: pluggable resource implementations (H-Sphere's resources).
    Resources {
        /// The resources configuration [default: <config-dir>/resources/resources.toml].
        #[arg(short, long, value_name = "FILE")]
        config: Option<PathBuf>,
        /// Where the engine keeps its database and `${DATA}` in the configuration points.
        #[arg(long, value_name = "DIR", default_value = "var/resources")]
        data: PathBuf,
        /// Where the implementations' components are [default: $PAASM_COMPONENTS, else
        /// ./components, else ./target/components as `cargo xtask build-guests` leaves them].
        #[arg(long, value_name = "DIR")]
        components: Option<PathBuf>,
        /// The configuration tree [default: $PAASM_CONFIG_DIR or ./config].
        #[arg(long, value_name = "DIR")]
        config_dir: Option<PathBuf>,
        /// Address to listen on; port 0 picks a free port.
        #[arg(
            short,
            long,
            value_name = "HOST:PORT",
            default_value = "127.0.0.1:8090"
        )]
        listen: String,
        /// Directory for precompiled components [default: $PAASM_CACHE_DIR or ~/.cache/paasm].
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Serve the frontend: users, credits, the service catalogue, the web dashboard; it starts
    /// each service's manager on a cloud.
    Frontend {
        /// Address to listen on; port 0 picks a free port.
        #[arg(short, long, value_name = "HOST:PORT", default_value = paasm::frontend::DEFAULT_LISTEN)]
        listen: String,
        /// The database: a file, sqlite:FILE or postgres://USER@HOST:PORT/DB
        /// [default: VAR/frontend.sqlite].
        #[arg(long, value_name = "ADDRESS")]
        database: Option<String>,
        /// Where the frontend keeps its manager nodes and, by default, its database.
        #[arg(long = "var", value_name = "DIR", default_value = "var/frontend")]
        var_dir: PathBuf,
        /// The configuration tree [default: $PAASM_CONFIG_DIR or ./config].
        #[arg(long, value_name = "DIR")]
        config_dir: Option<PathBuf>,
        /// The installed service packages [default: $PAASM_SERVICES_DIR, ./services, or
        /// target/services in a checkout].
        #[arg(long, value_name = "DIR")]
        services_dir: Option<PathBuf>,
        /// Directory for precompiled components [default: $PAASM_CACHE_DIR or ~/.cache/paasm].
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
        /// Credit a new user starts with.
        #[arg(long, value_name = "CREDIT", default_value_t = 50, value_parser = clap::value_parser!(i64).range(0..))]
        initial_credit: i64,
        /// Seconds of node time one credit pays for (managers charge each node per started period).
        #[arg(long, value_name = "SECONDS", default_value_t = 3600, value_parser = clap::value_parser!(u64).range(1..))]
        credit_period: u64,
        /// Seconds a new service's manager may take to answer before the service is ERROR.
        #[arg(long, value_name = "SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
        failout: u64,
        /// The port managers listen on, on their node's address.
        #[arg(long, value_name = "PORT", default_value_t = 80, value_parser = clap::value_parser!(u16).range(1..))]
        manager_port: u16,
        /// The URL managers call back [default: http://LISTEN-ADDRESS].
        #[arg(long, value_name = "URL")]
        public_url: Option<String>,
        /// Let anyone create an account (otherwise only administrators create users).
        #[arg(long)]
        open_registration: bool,
        /// Days an API token from `paasm login` stays valid.
        #[arg(long, value_name = "DAYS", default_value_t = 30, value_parser = clap::value_parser!(u64).range(1..=3650))]
        token_days: u64,
        /// The trust policy: services are created only from packages it admits
        /// [default: $PAASM_TRUST_POLICY, else none].
        #[arg(long, value_name = "FILE")]
        trust_policy: Option<PathBuf>,
    },
    /// Log in to a frontend: the token is saved for the other commands (never the password).
    Login {
        /// Your user name.
        username: String,
        /// Read the password from standard input instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Log out: the saved token is revoked and forgotten.
    Logout {
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Users of a frontend and their credit.
    User {
        #[command(subcommand)]
        command: UserCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Service packages and resource providers in OCI registries: push, pull, sign, verify.
    Package {
        #[command(subcommand)]
        command: PackageCmd,
    },
    /// Publisher keys for signing packages.
    Key {
        #[command(subcommand)]
        command: KeyCmd,
    },
    /// Services: the catalogue, creating, following and changing services through a frontend.
    Service {
        #[command(subcommand)]
        command: ServiceCmd,
        #[command(flatten)]
        client: ClientArgs,
    },
    /// Call a method of a manager or an agent (its verb is looked up in the server's methods),
    /// or, with a service id, of one of your services through the frontend.
    Call {
        /// The server: http://HOST:PORT or HOST:PORT; or a service id (SID).
        server: String,
        /// The method, e.g. get_service_info or add_nodes.
        method: String,
        /// Parameters: NAME=VALUE pairs (VALUE as JSON when it parses, else a string), or one
        /// JSON object.
        #[arg(value_name = "PARAM")]
        params: Vec<String>,
        /// After the call, follow the service until its state is stable again; exit 1 if it
        /// ends in ERROR.
        #[arg(short, long)]
        wait: bool,
        /// Seconds a request (and with --wait, the whole operation) may take.
        #[arg(long, default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
        timeout: u64,
        /// With a service id: the frontend [default: the one you logged in to].
        #[arg(long, value_name = "URL")]
        frontend: Option<String>,
    },
    /// Print the boot script a node of a service would run (contextualization).
    Context {
        /// The service (its annexes and start scripts are used when present).
        #[arg(long)]
        service: String,
        /// The node's role.
        #[arg(long, value_parser = ["manager", "agent"])]
        role: String,
        /// The cloud the node boots on.
        #[arg(long, default_value = "local")]
        cloud: String,
        /// The configuration tree [default: $PAASM_CONFIG_DIR or ./config].
        #[arg(long, value_name = "DIR")]
        config_dir: Option<PathBuf>,
        /// The installed service packages: an installed package's own annexes and start
        /// scripts replace the tree's [default: $PAASM_SERVICES_DIR, ./services, or
        /// target/services in a checkout].
        #[arg(long, value_name = "DIR")]
        services_dir: Option<PathBuf>,
        /// A substitution: `%NAME%` for managers, `$NAME` for agents (repeatable).
        #[arg(long = "var", value_name = "NAME=VALUE", value_parser = parse_var)]
        vars: Vec<(String, String)>,
    },
    /// Print what a component offers: a service's OpenRPC document (the methods it would
    /// serve), or a resource provider's description (attributes and schemas).
    Inspect {
        /// The component (.wasm).
        component: PathBuf,
    },
    /// Write the skeleton of a new guest component (see docs/authoring.md).
    New {
        /// The language: rust, python, js, c or go.
        #[arg(long, value_name = "LANG")]
        lang: String,
        /// The WIT world it implements: agent, manager or provider.
        #[arg(long, value_name = "WORLD", default_value = "agent")]
        world: String,
        /// Where to write it [default: guests/NAME].
        #[arg(long, value_name = "DIR")]
        dir: Option<PathBuf>,
        /// With --world manager: where its service package goes [default: config/services/NAME].
        #[arg(long, value_name = "DIR")]
        package_dir: Option<PathBuf>,
        /// The guest's name (lowercase words joined by `-`): its directory and component.
        name: String,
    },
    /// Boot the instances of an EC2-compatible API that starts no machines (moto) as network
    /// namespaces on this machine, until stopped: what the ec2 driver's tests and benchmarks
    /// run against. Needs root and iproute2.
    #[command(hide = true)]
    Ec2Hypervisor {
        /// The API's endpoint, e.g. http://127.0.0.1:5000.
        #[arg(long, value_name = "URL")]
        endpoint: String,
        #[arg(long, default_value = "us-east-1")]
        region: String,
        #[arg(long, value_name = "KEY")]
        access_key: String,
        #[arg(long, value_name = "SECRET")]
        secret_key: String,
        /// Where the hosts' files are kept.
        #[arg(long, value_name = "DIR")]
        dir: PathBuf,
    },
}

/// Options of every command that talks to a frontend.
#[derive(clap::Args, Clone)]
struct ClientArgs {
    /// The frontend [default: the one you logged in to].
    #[arg(long, global = true, value_name = "URL")]
    frontend: Option<String>,
    /// Seconds a request, and an operation waited for, may take.
    #[arg(long, global = true, value_name = "SECONDS", default_value_t = 600, value_parser = clap::value_parser!(u64).range(1..))]
    timeout: u64,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    json: bool,
}

impl ClientArgs {
    fn common(&self) -> paasm::cli::frontend::Common {
        paasm::cli::frontend::Common {
            frontend: self.frontend.clone(),
            timeout: std::time::Duration::from_secs(self.timeout),
            json: self.json,
            progress: !self.json && std::io::stderr().is_terminal(),
        }
    }
}

/// How to reach an OCI registry.
#[derive(clap::Args, Clone)]
struct RegistryArgs {
    /// The registry user [default: the docker config file's auths for the registry].
    #[arg(long, value_name = "USER", requires = "password_stdin")]
    username: Option<String>,
    /// Read the registry password from standard input (with --username).
    #[arg(long, requires = "username")]
    password_stdin: bool,
    /// Speak plain HTTP to the registry even off loopback.
    #[arg(long)]
    insecure: bool,
    /// Trust this CA certificate (PEM) for the registry's HTTPS.
    #[arg(long, value_name = "FILE")]
    registry_ca: Vec<PathBuf>,
}

impl RegistryArgs {
    fn registry(&self) -> Result<paasm::oci::Registry> {
        let credentials = match &self.username {
            Some(user) => {
                let mut password = String::new();
                std::io::stdin()
                    .read_line(&mut password)
                    .context("cannot read the registry password from standard input")?;
                Some((
                    user.clone(),
                    password.trim_end_matches(['\r', '\n']).to_string(),
                ))
            }
            None => None,
        };
        Ok(paasm::oci::Registry {
            credentials,
            insecure: self.insecure,
            ca_files: self.registry_ca.clone(),
        })
    }
}

#[derive(Subcommand)]
enum PackageCmd {
    /// Publish a service package (a directory with service.toml) or a resource provider (a
    /// directory of components) to an OCI registry.
    Push {
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        /// HOST[:PORT]/REPOSITORY[:TAG]
        #[arg(value_name = "REF")]
        reference: String,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Fetch a package into a new directory (every blob checked against its digest).
    Pull {
        /// HOST[:PORT]/REPOSITORY[:TAG] or HOST[:PORT]/REPOSITORY@sha256:DIGEST
        #[arg(value_name = "REF")]
        reference: String,
        #[arg(value_name = "DIR")]
        dir: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Sign a package's manifest digest; the signature is stored in the registry beside it.
    Sign {
        #[arg(value_name = "REF")]
        reference: String,
        /// The publisher's private key (from `paasm key generate`).
        #[arg(long, value_name = "FILE")]
        key: PathBuf,
        #[command(flatten)]
        registry: RegistryArgs,
    },
    /// Check a package's signature against public keys or a trust policy.
    #[command(group(clap::ArgGroup::new("trust").required(true).args(["key", "trust_policy"])))]
    Verify {
        #[arg(value_name = "REF")]
        reference: String,
        /// A trusted public key (repeatable).
        #[arg(long, value_name = "FILE")]
        key: Vec<PathBuf>,
        /// The trust policy naming the keys trusted per registry or repository.
        #[arg(long, value_name = "FILE")]
        trust_policy: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
    },
}

#[derive(Subcommand)]
enum KeyCmd {
    /// Make a publisher key pair: PREFIX.key (private) and PREFIX.pub; prints the key id.
    Generate {
        #[arg(value_name = "PREFIX")]
        prefix: PathBuf,
    },
}

#[derive(Subcommand)]
enum UserCmd {
    /// Create a user (the first user of a frontend needs no login and becomes an administrator).
    Create {
        username: String,
        /// Starting credit [default: the frontend's --initial-credit]; administrators only.
        #[arg(long)]
        credit: Option<i64>,
        /// Make the user an administrator; administrators only.
        #[arg(long)]
        admin: bool,
        /// Read the password from standard input instead of the terminal.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Show your credit and its ledger (or a user's, for administrators), or --add credit.
    Credit {
        username: Option<String>,
        /// Give (or with a negative number take) credit; administrators only.
        #[arg(long, value_name = "AMOUNT", allow_negative_numbers = true)]
        add: Option<i64>,
    },
    /// List the users (administrators only).
    List,
}

#[derive(Subcommand)]
enum ServiceCmd {
    /// The installed service types.
    Catalogue,
    /// Install a service package into the services directory a frontend serves (after
    /// checking that its components load and match the digests in its manifest); from a
    /// registry (oci://REF), only what the trust policy admits.
    Install {
        /// The package directory (with service.toml), or oci://HOST[:PORT]/REPOSITORY[:TAG|@DIGEST].
        #[arg(value_name = "DIR|oci://REF")]
        path: String,
        /// The trust policy for packages from registries [default: $PAASM_TRUST_POLICY].
        #[arg(long, value_name = "FILE")]
        trust_policy: Option<PathBuf>,
        #[command(flatten)]
        registry: RegistryArgs,
        /// The installed service packages [default: $PAASM_SERVICES_DIR, ./services, or
        /// target/services in a checkout].
        #[arg(long, value_name = "DIR")]
        services_dir: Option<PathBuf>,
        /// Directory for precompiled components [default: $PAASM_CACHE_DIR or ~/.cache/paasm].
        #[arg(long, value_name = "DIR")]
        cache_dir: Option<PathBuf>,
    },
    /// Create a service of a type from the catalogue (its manager starts on a cloud).
    Create {
        #[arg(value_name = "TYPE")]
        service_type: String,
        #[arg(long)]
        cloud: Option<String>,
        #[arg(long)]
        name: Option<String>,
    },
    /// List your services.
    List,
    /// A service's state, asked of its manager.
    Info { sid: i64 },
    /// Start a service (its manager's startup) and wait until it runs.
    Start {
        sid: i64,
        #[arg(long)]
        cloud: Option<String>,
    },
    /// Stop a service (its manager's shutdown) and wait until its nodes are gone.
    Stop { sid: i64 },
    /// Shut a service down, stop its manager and remove it.
    Terminate { sid: i64 },
    /// Add agent nodes and wait until they answer.
    AddNodes {
        sid: i64,
        count: i64,
        #[arg(long)]
        cloud: Option<String>,
        #[arg(long)]
        role: Option<String>,
    },
    /// Remove agent nodes.
    RemoveNodes { sid: i64, count: i64 },
    /// The nodes of a service, by role.
    Nodes { sid: i64 },
    /// The manager's log.
    Logs { sid: i64 },
    /// Rename a service.
    Rename { sid: i64, name: String },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    match cli.command {
        Command::Agent {
            config,
            component,
            listen,
            cache_dir,
            tls_cert,
            tls_key,
            tls_client_ca,
            threads,
        } => {
            // Configuration problems are reported as the seed did: every message, exit 1.
            let agent_config = match agent::load_config(&config) {
                Ok(c) => c,
                Err(messages) => return seed_failure(messages),
            };
            let log_file = agent_config.ini.get("agent", "LOG_FILE").map(PathBuf::from);
            if let Err(code) = start_logging(log_file.as_deref()) {
                return code;
            }
            let options = AgentOptions {
                config,
                component,
                listen,
                cache_dir: cache_dir.or_else(default_cache_dir),
                tls: tls_files(tls_cert, tls_key, tls_client_ca),
                threads: threads.map_or_else(Threads::per_cpu, Threads::Dedicated),
            };
            exit(runtime().and_then(|rt| rt.block_on(agent::run(agent_config, options))))
        }
        Command::Manager {
            config,
            service,
            cloud,
            var_dir,
            listen,
            config_dir,
            services_dir,
            cache_dir,
            tls_cert,
            tls_key,
            tls_client_ca,
        } => {
            let source = match (config, service) {
                (Some(path), _) => ConfigSource::File(path),
                (None, Some(name)) => ConfigSource::Service {
                    var: var_dir.unwrap_or_else(|| Path::new("var").join(&name)),
                    name,
                    cloud,
                },
                (None, None) => unreachable!("clap requires --config or --service"),
            };
            let options = ManagerOptions {
                source,
                listen,
                config_dir: dir_option(config_dir, "PAASM_CONFIG_DIR", "config"),
                services_dir: services_option(services_dir),
                cache_dir: cache_dir.or_else(default_cache_dir),
                tls: tls_files(tls_cert, tls_key, tls_client_ca),
            };
            let prepared = match manager::prepare(&options) {
                Ok(p) => p,
                Err(messages) => return seed_failure(messages),
            };
            let log_file = prepared.ini.get("manager", "LOG_FILE").map(PathBuf::from);
            if let Err(code) = start_logging(log_file.as_deref()) {
                return code;
            }
            exit(runtime().and_then(|rt| rt.block_on(manager::run(prepared, options))))
        }
        Command::Resources {
            config,
            data,
            components,
            config_dir,
            listen,
            cache_dir,
        } => {
            if let Err(code) = start_logging(Some(&data.join("resource.log"))) {
                return code;
            }
            let config = config.unwrap_or_else(|| {
                dir_option(config_dir, "PAASM_CONFIG_DIR", "config")
                    .join("resources")
                    .join("resources.toml")
            });
            let options = paasm::resources::server::ResourcesOptions {
                config,
                data: std::path::absolute(&data).unwrap_or(data),
                components: built_dir_option(components, "PAASM_COMPONENTS", "components"),
                listen,
                cache_dir: cache_dir.or_else(default_cache_dir),
            };
            exit(runtime().and_then(|rt| rt.block_on(paasm::resources::server::run(options))))
        }
        Command::Frontend {
            listen,
            database,
            var_dir,
            config_dir,
            services_dir,
            cache_dir,
            initial_credit,
            credit_period,
            failout,
            manager_port,
            public_url,
            open_registration,
            token_days,
            trust_policy,
        } => {
            if let Err(code) = start_logging(Some(&var_dir.join("frontend.log"))) {
                return code;
            }
            let trust_policy = match read_policy(trust_policy) {
                Ok(policy) => policy,
                Err(e) => return exit(Err(e)),
            };
            let var = std::path::absolute(&var_dir).unwrap_or(var_dir);
            let absolute = |p: PathBuf| std::path::absolute(&p).unwrap_or(p);
            let mut options = paasm::frontend::FrontendOptions::new(
                var.clone(),
                absolute(dir_option(config_dir, "PAASM_CONFIG_DIR", "config")),
                absolute(services_option(services_dir)),
            );
            if let Some(database) = database {
                options.database = database;
            }
            options.listen = listen;
            options.cache_dir = cache_dir.or_else(default_cache_dir);
            options.initial_credit = initial_credit;
            options.credit_period = credit_period;
            options.failout = std::time::Duration::from_secs(failout);
            options.manager_port = manager_port;
            options.public_url = public_url;
            options.open_registration = open_registration;
            options.token_lifetime = std::time::Duration::from_secs(token_days * 24 * 3600);
            options.trust_policy = trust_policy;
            exit(runtime().and_then(|rt| rt.block_on(paasm::frontend::server::run(options))))
        }
        Command::Login {
            username,
            password_stdin,
            client,
        } => client_exit(paasm::cli::frontend::login(
            &client.common(),
            &username,
            password_stdin,
        )),
        Command::Logout { client } => client_exit(paasm::cli::frontend::logout(&client.common())),
        Command::User { command, client } => {
            use paasm::cli::frontend::UserCommand;
            let command = match command {
                UserCmd::Create {
                    username,
                    credit,
                    admin,
                    password_stdin,
                } => UserCommand::Create {
                    username,
                    credit,
                    admin,
                    password_stdin,
                },
                UserCmd::Credit { username, add } => UserCommand::Credit { username, add },
                UserCmd::List => UserCommand::List,
            };
            client_exit(paasm::cli::frontend::user(&client.common(), command))
        }
        Command::Service { command, client } => service_command(command, &client),
        Command::Package { command } => client_exit(package_command(command)),
        Command::Key {
            command: KeyCmd::Generate { prefix },
        } => client_exit(async move {
            let id = paasm::oci::sign::generate(&prefix)?;
            println!("{id}");
            Ok(())
        }),
        Command::Call {
            server,
            method,
            params,
            wait: _,
            timeout,
            frontend,
        } if server.parse::<i64>().is_ok() => {
            let common = paasm::cli::frontend::Common {
                frontend,
                timeout: std::time::Duration::from_secs(timeout),
                json: true,
                progress: false,
            };
            let sid = server.parse::<i64>().unwrap_or_default();
            client_exit(async move {
                let params = paasm::cli::call::parse_params(&params)?;
                paasm::cli::frontend::call(&common, sid, &method, params).await
            })
        }
        Command::Call {
            server,
            method,
            params,
            wait,
            timeout,
            frontend: _,
        } => {
            let _ = init_logging(None);
            let options = paasm::cli::call::CallOptions {
                server,
                method,
                params,
                wait,
                timeout: std::time::Duration::from_secs(timeout),
                progress: std::io::stderr().is_terminal(),
            };
            match runtime().and_then(|rt| rt.block_on(paasm::cli::call::run(options))) {
                Ok(true) => ExitCode::SUCCESS,
                Ok(false) => ExitCode::from(1),
                Err(e) => {
                    eprintln!("error: {e:#}");
                    ExitCode::from(1)
                }
            }
        }
        Command::Context {
            service,
            role,
            cloud,
            config_dir,
            services_dir,
            vars,
        } => {
            let _ = init_logging(None);
            let tree = dir_option(config_dir, "PAASM_CONFIG_DIR", "config");
            let services = services_option(services_dir);
            exit(context(&service, &role, &cloud, &tree, &services, vars))
        }
        Command::Inspect { component } => {
            let _ = init_logging(None);
            exit(runtime().and_then(|rt| rt.block_on(inspect(&component))))
        }
        Command::New {
            lang,
            world,
            dir,
            package_dir,
            name,
        } => {
            let _ = init_logging(None);
            let request = paasm::cli::new::NewGuest {
                lang,
                world,
                name,
                dir,
                package_dir,
            };
            exit(paasm::cli::new::run(&request).map(|dir| {
                println!(
                    "wrote {}: build it with `cargo xtask build-guests`",
                    dir.display()
                )
            }))
        }
        Command::Ec2Hypervisor {
            endpoint,
            region,
            access_key,
            secret_key,
            dir,
        } => {
            let _ = init_logging(None);
            exit(ec2_hypervisor(
                &endpoint,
                &region,
                &access_key,
                &secret_key,
                &dir,
            ))
        }
    }
}

/// `paasm ec2-hypervisor`: announces the account it set up, then runs until SIGINT or SIGTERM
/// and kills its hosts.
fn ec2_hypervisor(
    endpoint: &str,
    region: &str,
    access_key: &str,
    secret_key: &str,
    dir: &Path,
) -> Result<()> {
    let endpoint = paasm::iaas::ec2::Endpoint::parse(endpoint)
        .map_err(|e| anyhow::anyhow!("--endpoint: {e}"))?;
    let client = paasm::iaas::ec2::Ec2Client::new(
        endpoint,
        region,
        access_key,
        secret_key,
        std::time::Duration::from_secs(10),
    );
    let hypervisor = paasm::iaas::hypervisor::Hypervisor::start(client, dir)
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    println!(
        "paasm ec2-hypervisor ready: SUBNET_ID = {} MANAGER_IP = {}",
        hypervisor.subnet_id, hypervisor.gateway
    );
    let rt = runtime()?;
    rt.block_on(async {
        paasm::service::agent::shutdown_signal()?.await;
        anyhow::Ok(())
    })?;
    drop(hypervisor);
    Ok(())
}

/// Runs a frontend client command: errors are printed as `error: ...`, exit status 1.
fn client_exit(command: impl Future<Output = Result<()>>) -> ExitCode {
    let _ = init_logging(None);
    match runtime().and_then(|rt| rt.block_on(command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

/// The trust policy of `--trust-policy`, else `$PAASM_TRUST_POLICY`, else none (nothing
/// checked).
fn read_policy(path: Option<PathBuf>) -> Result<paasm::oci::policy::Policy> {
    match path.or_else(|| std::env::var_os("PAASM_TRUST_POLICY").map(PathBuf::from)) {
        Some(path) => Ok(paasm::oci::policy::Policy::read(&path)?),
        None => Ok(paasm::oci::policy::Policy::default()),
    }
}

/// A spinner on stderr while a registry operation runs (hidden when stderr is no terminal).
fn progress(message: &str) -> indicatif::ProgressBar {
    let bar = if std::io::stderr().is_terminal() {
        indicatif::ProgressBar::new_spinner()
    } else {
        indicatif::ProgressBar::hidden()
    };
    bar.set_message(message.to_string());
    bar.enable_steady_tick(std::time::Duration::from_millis(100));
    bar
}

async fn package_command(command: PackageCmd) -> Result<()> {
    use paasm::oci::{artifact, parse_reference, sign};
    match command {
        PackageCmd::Push {
            dir,
            reference,
            registry,
        } => {
            let at = parse_reference(&reference)?;
            let session = registry.registry()?.session(&at)?;
            let spinner = progress(&format!("pushing {} to {reference}", dir.display()));
            let pushed = artifact::push(&session, &dir, &at).await;
            spinner.finish_and_clear();
            let pushed = pushed.with_context(|| format!("cannot push {}", dir.display()))?;
            println!(
                "pushed {} {} ({:?}, {} files) to {}@{}",
                pushed.config.name,
                pushed.config.version,
                pushed.config.kind,
                pushed.config.files.len(),
                paasm::oci::repository_of(&at),
                pushed.digest
            );
        }
        PackageCmd::Pull {
            reference,
            dir,
            registry,
        } => {
            let at = parse_reference(&reference)?;
            let session = registry.registry()?.session(&at)?;
            let spinner = progress(&format!("pulling {reference}"));
            let result = async {
                let resolved = artifact::resolve(&session, &at).await?;
                let config = artifact::pull_into(&session, &resolved, &dir).await?;
                Ok::<_, paasm::oci::OciError>((resolved, config))
            }
            .await;
            spinner.finish_and_clear();
            let (resolved, config) = result.with_context(|| format!("cannot pull {reference}"))?;
            println!(
                "pulled {} {} ({}) into {}",
                config.name,
                config.version,
                resolved.digest,
                dir.display()
            );
        }
        PackageCmd::Sign {
            reference,
            key,
            registry,
        } => {
            let signing = sign::read_signing_key(&key)?;
            let at = parse_reference(&reference)?;
            let session = registry.registry()?.session(&at)?;
            let result = async {
                let resolved = artifact::resolve(&session, &at).await?;
                let signature = sign::sign(&session, &resolved, &signing).await?;
                Ok::<_, paasm::oci::OciError>((resolved, signature))
            }
            .await;
            let (resolved, signature) =
                result.with_context(|| format!("cannot sign {reference}"))?;
            println!(
                "signed {}@{} with {} (signature {signature})",
                paasm::oci::repository_of(&at),
                resolved.digest,
                sign::PublicKey::read(&key)?.id
            );
        }
        PackageCmd::Verify {
            reference,
            key,
            trust_policy,
            registry,
        } => {
            let at = parse_reference(&reference)?;
            let session = registry.registry()?.session(&at)?;
            let policy = match trust_policy {
                // Verifying checks the signature whatever the policy's mode.
                Some(path) => paasm::oci::policy::Policy {
                    mode: paasm::oci::policy::Mode::RequireSigned,
                    ..paasm::oci::policy::Policy::read(&path)?
                },
                None => paasm::oci::policy::Policy {
                    mode: paasm::oci::policy::Mode::RequireSigned,
                    scopes: vec![paasm::oci::policy::Scope {
                        scope: paasm::oci::repository_of(&at),
                        keys: key
                            .iter()
                            .map(|k| sign::PublicKey::read(k))
                            .collect::<Result<_, _>>()?,
                    }],
                },
            };
            let result = async {
                let resolved = artifact::resolve(&session, &at).await?;
                let verdict = paasm::oci::check_policy(&session, &resolved, &policy).await?;
                Ok::<_, paasm::oci::OciError>((resolved, verdict))
            }
            .await;
            let (resolved, verdict) =
                result.with_context(|| format!("cannot verify {reference}"))?;
            if let Some(warning) = verdict.warning {
                eprintln!("warning: {warning}");
            }
            match verdict.signer {
                Some(id) => println!(
                    "{}@{} is signed by {id}",
                    paasm::oci::repository_of(&at),
                    resolved.digest
                ),
                None => println!(
                    "{}@{} is not checked: the trust policy's mode is {}",
                    paasm::oci::repository_of(&at),
                    resolved.digest,
                    policy.mode
                ),
            }
        }
    }
    Ok(())
}

fn service_command(command: ServiceCmd, client: &ClientArgs) -> ExitCode {
    use paasm::cli::frontend::ServiceCommand as S;
    let command = match command {
        ServiceCmd::Install {
            path,
            trust_policy,
            registry,
            services_dir,
            cache_dir,
        } => {
            return client_exit(async move {
                let services = services_option(services_dir);
                let runtime = Runtime::new(&RuntimeOptions {
                    cache_dir: cache_dir.or_else(default_cache_dir),
                    ..RuntimeOptions::default()
                })?;
                let package = if path.starts_with("oci://") {
                    let policy = read_policy(trust_policy)?;
                    let reference = paasm::oci::parse_reference(&path)?;
                    let spinner = progress(&format!("installing {path}"));
                    let result = paasm::oci::install(
                        &registry.registry()?,
                        &reference,
                        &policy,
                        &services,
                        &runtime,
                    )
                    .await;
                    spinner.finish_and_clear();
                    let (package, verdict) =
                        result.with_context(|| format!("cannot install {path}"))?;
                    if let Some(warning) = verdict.warning {
                        eprintln!(
                            "warning: {warning} (installed anyway: the trust policy's mode is warn)"
                        );
                    }
                    if let Some(origin) = package.origin() {
                        println!(
                            "{} {}, signed by {}",
                            origin.reference,
                            origin.digest,
                            origin.signer.as_deref().unwrap_or("nobody")
                        );
                    }
                    package
                } else {
                    let path = PathBuf::from(&path);
                    paasm::service::package::install(&path, &services, &runtime, None)
                        .with_context(|| format!("cannot install {}", path.display()))?
                };
                println!(
                    "installed {} {} into {}",
                    package.name,
                    package.version,
                    package.dir.display()
                );
                Ok(())
            });
        }
        ServiceCmd::Catalogue => S::Catalogue,
        ServiceCmd::Create {
            service_type,
            cloud,
            name,
        } => S::Create {
            service_type,
            cloud,
            name,
        },
        ServiceCmd::List => S::List,
        ServiceCmd::Info { sid } => S::Info { sid },
        ServiceCmd::Start { sid, cloud } => S::Start { sid, cloud },
        ServiceCmd::Stop { sid } => S::Stop { sid },
        ServiceCmd::Terminate { sid } => S::Terminate { sid },
        ServiceCmd::AddNodes {
            sid,
            count,
            cloud,
            role,
        } => S::AddNodes {
            sid,
            count,
            cloud,
            role,
        },
        ServiceCmd::RemoveNodes { sid, count } => S::RemoveNodes { sid, count },
        ServiceCmd::Nodes { sid } => S::Nodes { sid },
        ServiceCmd::Logs { sid } => S::Logs { sid },
        ServiceCmd::Rename { sid, name } => S::Rename { sid, name },
    };
    let common = client.common();
    let _ = init_logging(None);
    match runtime().and_then(|rt| rt.block_on(paasm::cli::frontend::service(&common, command))) {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::from(1),
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(1)
        }
    }
}

fn exit(result: Result<()>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The subscriber writes to stderr (and to the LOG_FILE, if any).
            tracing::error!("{e:#}");
            ExitCode::from(1)
        }
    }
}

fn runtime() -> Result<tokio::runtime::Runtime> {
    tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")
}

/// Logs to stderr and, when given, appends to `log_file` (the service's LOG_FILE). The level
/// comes from `PAASM_LOG` (`info` by default), in `RUST_LOG` syntax.
fn init_logging(log_file: Option<&Path>) -> Result<()> {
    let filter = EnvFilter::try_from_env("PAASM_LOG").unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt().with_env_filter(filter);
    match log_file {
        Some(path) => {
            if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create log directory {}", dir.display()))?;
            }
            let file = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .with_context(|| format!("cannot open log file {}", path.display()))?;
            builder
                .with_ansi(false)
                .with_writer(std::io::stderr.and(Arc::new(file)))
                .init();
        }
        None => builder
            .with_ansi(std::io::stderr().is_terminal())
            .with_writer(std::io::stderr)
            .init(),
    }
    Ok(())
}

/// Prints every configuration message as the seed did; the exit status is 1.
fn seed_failure(messages: Vec<String>) -> ExitCode {
    for message in messages {
        eprintln!("{message}");
    }
    ExitCode::from(1)
}

/// [`init_logging`], or the exit status when it cannot start.
fn start_logging(log_file: Option<&Path>) -> Result<(), ExitCode> {
    init_logging(log_file).map_err(|e| {
        eprintln!("error: {e:#}");
        ExitCode::from(1)
    })
}

/// The TLS files of `--tls-cert`, `--tls-key` and `--tls-client-ca` (clap makes them come
/// together).
fn tls_files(
    cert: Option<PathBuf>,
    key: Option<PathBuf>,
    client_ca: Option<PathBuf>,
) -> Option<TlsFiles> {
    cert.zip(key).map(|(cert, key)| TlsFiles {
        cert,
        key,
        client_ca,
    })
}

/// A directory from its option, else from the environment variable, else the default.
fn dir_option(option: Option<PathBuf>, env: &str, default: &str) -> PathBuf {
    option
        .or_else(|| std::env::var_os(env).map(PathBuf::from))
        .unwrap_or_else(|| PathBuf::from(default))
}

/// A directory of built artifacts: the option, else `$env`, else `./<name>` when it exists,
/// else, in a checkout, `target/<name>`, where `cargo xtask build-guests` leaves them.
fn built_dir_option(option: Option<PathBuf>, env: &str, name: &str) -> PathBuf {
    option
        .or_else(|| std::env::var_os(env).map(PathBuf::from))
        .unwrap_or_else(|| {
            let installed = PathBuf::from(name);
            let built = Path::new("target").join(name);
            if !installed.is_dir() && built.is_dir() {
                built
            } else {
                installed
            }
        })
}

/// The installed service packages.
fn services_option(option: Option<PathBuf>) -> PathBuf {
    built_dir_option(option, "PAASM_SERVICES_DIR", "services")
}

fn parse_var(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((name, value)) if !name.is_empty() => Ok((name.to_string(), value.to_string())),
        _ => Err(format!("expected NAME=VALUE, found {text:?}")),
    }
}

fn context(
    service: &str,
    role: &str,
    cloud: &str,
    config_dir: &Path,
    services_dir: &Path,
    vars: Vec<(String, String)>,
) -> Result<()> {
    let role: Role = role.parse().map_err(anyhow::Error::msg)?;
    // An installed package brings its own annexes and start scripts; a service without one
    // is contextualized from the tree alone.
    let tree = if paasm::service::package::installed(services_dir)
        .iter()
        .any(|n| n == service)
    {
        ServicePackage::find(services_dir, service)?.config_tree(config_dir)?
    } else {
        ConfigTree::new(config_dir)
    };
    let script = tree.script(role, service, cloud)?;
    let vars: BTreeMap<String, String> = vars.into_iter().collect();
    let script = match role {
        Role::Manager => substitute_percent(&script, &vars),
        Role::Agent => substitute_dollar(&script, &vars),
    };
    print!("{script}");
    Ok(())
}

async fn inspect(path: &Path) -> Result<()> {
    let bytes = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    let name = path
        .file_stem()
        .and_then(|s| s.to_str())
        .unwrap_or("component")
        .to_string();
    let host = Arc::new(PlatformHost::new(
        name.clone(),
        Arc::new(IniConfig::default()),
        StateStore::in_memory(&name)?,
    ));
    let runtime = Runtime::new(&RuntimeOptions::default())?;
    let guest = runtime
        .load(
            &name,
            &bytes,
            host,
            CallLimits::default(),
            InstancePolicy::Fresh,
        )
        .with_context(|| format!("cannot load {}", path.display()))?;
    let guest = Arc::new(guest);
    // A resource provider: its description (attributes and schemas).
    if let Ok(provider) = paasm::engine::provider::ProviderGuest::new(guest.clone()) {
        use paasm::resources::implementation::Implementation;
        let implementation =
            paasm::resources::component::ComponentImplementation::load(provider).await?;
        let d = implementation.description();
        let document = paasm::resources::engine::describe_json(d, d.offline);
        println!("{}", serde_json::to_string_pretty(&document)?);
        return Ok(());
    }
    let version = format!("sha256:{}", &digest(&bytes)[..16]);
    let dispatcher = Dispatcher::new(&name, &version, guest, Vec::new())?;
    let document = dispatcher
        .call(None, paasm::rpc::DISCOVER, paasm::rpc::Params::None)
        .await
        .map_err(|e| anyhow::anyhow!("cannot describe {name}: {e:?}"))?;
    println!("{}", serde_json::to_string_pretty(&document)?);
    Ok(())
}
