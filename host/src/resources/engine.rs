//! The resource engine: the seed's semantics around one active implementation per logical
//! resource.
//!
//! For every call the engine finds the active implementation, checks the parent path against
//! the hierarchy (each ancestor must exist), parses the logical key, builds the parameter
//! collection (the config attributes of the implementation and of all its parents, then the
//! caller's instance parameters checked against the instance schema), and answers
//! already-exists / not-found itself where it can: from its own records, and for listable
//! resources from the cache of what `enumerate` reported (or a fresh `enumerate` when the
//! resource is not cacheable). Calls on one instance are serialised, and all calls on a
//! resource when it is exclusive, listable, or has managed physical keys (allocated here, so
//! two creates never get the same key). What an implementation says back (its errors, the
//! outcome of an offline job) has the call's sensitive values masked before anyone sees it.
//! `IgnoreExists` turns already-exists into success. Operations on an offline resource are
//! checked, queued durably and run in the background; the call answers with a job id.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::sync::{Arc, Mutex};

use serde_json::{Value, json};

use super::implementation::{Description, Failure, Implementation, Instance};
use super::keys::Key;
use super::params::{Params, inherit, mask_secrets};
use super::schema::{Op, ParamErrors};
use super::store::{InstanceStore, Record, StoreError};

/// One instance of a parent path: `[("account", "alice")]`.
pub type Path = Vec<(String, String)>;

/// A call to the engine.
#[derive(Debug, Clone, PartialEq)]
pub struct Request {
    pub op: Op,
    pub resource: String,
    pub parent: Path,
    pub key: String,
    /// For create and update: the instance parameters (for update, the ones to change).
    pub params: BTreeMap<String, String>,
    /// Check and answer what would be done, without the implementation's side effects.
    pub dry_run: bool,
}

/// Why a call failed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum EngineError {
    #[error("resource already exists: {0}")]
    AlreadyExists(String),
    #[error("resource not found: {0}")]
    NotFound(String),
    /// Every parameter problem, each naming its parameter.
    #[error("invalid parameters: {}", .0.iter().map(|(n, m)| format!("{n}: {m}")).collect::<Vec<_>>().join("; "))]
    InvalidParameters(Vec<(String, String)>),
    #[error("unknown resource {name:?}; configured resources: {known}")]
    UnknownResource { name: String, known: String },
    #[error("{0}")]
    Failed(String),
}

impl From<StoreError> for EngineError {
    fn from(e: StoreError) -> Self {
        EngineError::Failed(e.to_string())
    }
}

impl From<ParamErrors> for EngineError {
    fn from(errors: ParamErrors) -> Self {
        EngineError::InvalidParameters(
            errors
                .iter()
                .map(|e| (e.param().to_string(), e.to_string()))
                .collect(),
        )
    }
}

/// The values of the sensitive parameters in `collections`.
fn secrets_of(collections: &[&Params]) -> Vec<String> {
    collections
        .iter()
        .flat_map(|p| p.secret_values().map(str::to_string))
        .collect()
}

/// An implementation's failure as the caller sees it: its kind kept, the call's sensitive
/// values masked in its message (an implementation may quote what it was given).
fn from_failure_masked(f: Failure, secrets: &[String]) -> EngineError {
    let f = match f {
        Failure::AlreadyExists(m) => Failure::AlreadyExists(mask_secrets(m, secrets)),
        Failure::NotFound(m) => Failure::NotFound(mask_secrets(m, secrets)),
        Failure::InvalidParameter { name, message } => Failure::InvalidParameter {
            name,
            message: mask_secrets(message, secrets),
        },
        Failure::Failed(m) => Failure::Failed(mask_secrets(m, secrets)),
    };
    from_failure(f)
}

fn from_failure(f: Failure) -> EngineError {
    match f {
        Failure::AlreadyExists(m) => EngineError::AlreadyExists(m),
        Failure::NotFound(m) => EngineError::NotFound(m),
        Failure::InvalidParameter { name, message } => {
            EngineError::InvalidParameters(vec![(name, message)])
        }
        Failure::Failed(m) => EngineError::Failed(m),
    }
}

/// A configured resource: its active implementation and that implementation's checked
/// config attributes.
pub struct Active {
    pub implementation: Arc<dyn Implementation>,
    pub config: Params,
    /// Whether operations are queued: the implementation's `Offline` attribute, unless the
    /// configuration says otherwise.
    pub offline: bool,
}

impl Active {
    fn description(&self) -> &Description {
        self.implementation.description()
    }
}

/// The engine.
pub struct Engine {
    resources: BTreeMap<String, Active>,
    store: InstanceStore,
    locks: Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    /// Listable, cacheable resources: what `enumerate` reported, by resource and parent path.
    cache: Mutex<HashMap<(String, String), BTreeSet<String>>>,
    /// Wakes the offline worker.
    jobs: tokio::sync::Notify,
}

/// A key in the form the engine compares keys in: folded unless the resource is case
/// sensitive.
fn fold(key: &Key, case_sensitive: bool) -> String {
    key.folded(case_sensitive).val()
}

fn key_json(key: &Key) -> Value {
    match key {
        Key::Num(n) => json!({"num": n}),
        Key::Str(s) => json!({"str": s}),
    }
}

fn key_from_json(v: &Value) -> Option<Key> {
    if let Some(n) = v.get("num").and_then(Value::as_i64) {
        return Some(Key::Num(n));
    }
    v.get("str")
        .and_then(Value::as_str)
        .map(|s| Key::Str(s.into()))
}

impl Engine {
    /// An engine over the configured `resources` (resource name -> active implementation),
    /// keeping its records in `store`.
    pub fn new(resources: BTreeMap<String, Active>, store: InstanceStore) -> Arc<Self> {
        Arc::new(Self {
            resources,
            store,
            locks: Mutex::new(HashMap::new()),
            cache: Mutex::new(HashMap::new()),
            jobs: tokio::sync::Notify::new(),
        })
    }

    /// The configured resources, sorted.
    pub fn names(&self) -> Vec<String> {
        self.resources.keys().cloned().collect()
    }

    fn active(&self, name: &str) -> Result<&Active, EngineError> {
        self.resources
            .get(name)
            .ok_or_else(|| EngineError::UnknownResource {
                name: name.to_string(),
                known: self.names().join(", "),
            })
    }

    /// The description of `resource` as JSON (schemas included).
    pub fn describe(&self, resource: &str) -> Result<Value, EngineError> {
        let active = self.active(resource)?;
        Ok(describe_json(active.description(), active.offline))
    }

    fn lock(&self, name: String) -> Arc<tokio::sync::Mutex<()>> {
        self.locks
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(name)
            .or_default()
            .clone()
    }

    /// Resolves a parent path: each ancestor's resource must be the next one's parent, the
    /// first a root, and each instance must exist. Returns the path's canonical text and the
    /// parent's collection (with its own parents).
    fn resolve_parent(
        &self,
        resource: &str,
        parent: &Path,
    ) -> Result<(String, Option<Instance>, Vec<Params>), EngineError> {
        let mut expected = self.active(resource)?.description().parent.clone();
        // Walk from the nearest parent to the root, checking the hierarchy.
        for (name, _) in parent.iter().rev() {
            match expected.as_deref() {
                Some(p) if p == name => {}
                Some(p) => {
                    return Err(EngineError::InvalidParameters(vec![(
                        "parent".into(),
                        format!("the parent of {resource} instances is a {p}, not a {name}"),
                    )]));
                }
                None => {
                    return Err(EngineError::InvalidParameters(vec![(
                        "parent".into(),
                        format!("{name} has no parent resource, so it cannot appear here"),
                    )]));
                }
            }
            expected = self.active(name)?.description().parent.clone();
        }
        if let Some(p) = expected {
            return Err(EngineError::InvalidParameters(vec![(
                "parent".into(),
                format!("a {resource} instance needs its {p} in the parent path"),
            )]));
        }
        // Build the chain from the root down.
        let mut canonical = String::new();
        let mut chain: Option<Instance> = None;
        let mut configs: Vec<Params> = Vec::new();
        for (name, key_text) in parent {
            let active = self.active(name)?;
            let d = active.description();
            let key = Key::parse(d.lkey_kind, key_text).map_err(|e| {
                EngineError::InvalidParameters(vec![("parent".into(), e.to_string())])
            })?;
            let folded = fold(&key, d.case_sensitive);
            let record = self.store.get(name, &canonical, &folded)?.ok_or_else(|| {
                EngineError::NotFound(format!("{name} {key_text} does not exist"))
            })?;
            let own_parents: Vec<&Params> = configs.iter().rev().collect();
            let config = inherit(&own_parents, &active.config);
            let mut params = config.clone();
            for (k, v) in &record.params {
                params.set(k.clone(), v.clone());
            }
            d.instance.mark_sensitive(&mut params);
            chain = Some(Instance {
                params,
                lkey: key,
                pkey: record.pkey.as_ref().and_then(key_from_json),
                parent: chain.map(Box::new),
            });
            configs.push(active.config.clone());
            canonical = format!("{canonical}/{name}:{folded}");
        }
        Ok((canonical, chain, configs))
    }

    /// The physical keys `enumerate` reports under a parent, through the cache when the
    /// resource is cacheable.
    async fn listed(
        &self,
        active: &Active,
        parent_path: &str,
        parent_pkey: Option<Key>,
        config: &Params,
    ) -> Result<BTreeSet<String>, EngineError> {
        let d = active.description();
        let cache_key = (d.resource.clone(), parent_path.to_string());
        if d.cacheable
            && let Some(keys) = self
                .cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .get(&cache_key)
        {
            return Ok(keys.clone());
        }
        let keys = active
            .implementation
            .enumerate(parent_pkey, config.clone())
            .await
            .map_err(from_failure)?;
        let keys: BTreeSet<String> = keys.iter().map(|k| fold(k, d.case_sensitive)).collect();
        if d.cacheable {
            self.cache
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .insert(cache_key, keys.clone());
        }
        Ok(keys)
    }

    fn cache_update(&self, resource: &str, parent_path: &str, key: &str, present: bool) {
        let mut cache = self.cache.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(keys) = cache.get_mut(&(resource.to_string(), parent_path.to_string())) {
            if present {
                keys.insert(key.to_string());
            } else {
                keys.remove(key);
            }
        }
    }

    /// Runs a request: at once, or (for an offline resource) queued, answering a job id.
    pub async fn call(self: &Arc<Self>, request: Request) -> Result<Value, EngineError> {
        let active = self.active(&request.resource)?;
        if active.offline && request.op != Op::Get && !request.dry_run {
            // Check now what can be checked without waiting for the jobs ahead, so a bad
            // request fails at once; whether the instance exists is the job's business.
            self.check(&request)?;
            let id = self.store.enqueue(&request_json(&request))?;
            self.jobs.notify_one();
            return Ok(json!({"job": id, "state": "queued"}));
        }
        self.execute(request).await
    }

    /// Checks a request's resource, parent path, key and parameters, without locks and
    /// without asking the implementation anything.
    fn check(&self, request: &Request) -> Result<(), EngineError> {
        let active = self.active(&request.resource)?;
        let d = active.description();
        let (_, _, parent_configs) = self.resolve_parent(&request.resource, &request.parent)?;
        Key::parse(d.lkey_kind, &request.key)
            .map_err(|e| EngineError::InvalidParameters(vec![(d.lkey.clone(), e.to_string())]))?;
        let refs: Vec<&Params> = parent_configs.iter().rev().collect();
        let config = inherit(&refs, &active.config);
        let mut instance: Params = request.params.clone().into_iter().collect();
        instance.set(d.lkey.clone(), request.key.clone());
        let op = if request.op == Op::Create {
            Op::Create
        } else {
            Op::Update
        };
        let config = if op == Op::Create {
            config
        } else {
            Params::new()
        };
        if matches!(request.op, Op::Create | Op::Update) {
            d.instance.apply(&config, &instance, op)?;
        }
        Ok(())
    }

    /// The state of an offline job.
    pub fn job(&self, id: i64) -> Result<Value, EngineError> {
        let job = self
            .store
            .job(id)?
            .ok_or_else(|| EngineError::NotFound(format!("no job {id}")))?;
        Ok(json!({"job": job.id, "state": job.state, "outcome": job.outcome}))
    }

    /// Runs queued jobs one after the other, forever; jobs left by a previous process first.
    pub async fn run_jobs(self: Arc<Self>) {
        loop {
            let next = match self.store.next_job() {
                Ok(next) => next,
                Err(e) => {
                    tracing::error!("cannot read the job queue: {e}");
                    None
                }
            };
            let Some(job) = next else {
                self.jobs.notified().await;
                continue;
            };
            let _ = self.store.set_job(job.id, "running", None);
            let outcome = match request_from_json(&job.request) {
                Some(request) => self.execute(request).await,
                None => Err(EngineError::Failed("malformed job".into())),
            };
            let (state, value) = match outcome {
                Ok(result) => ("done", json!({"result": result})),
                Err(e) => ("failed", json!({"error": e.to_string()})),
            };
            tracing::info!(job = job.id, state, "offline job finished");
            if let Err(e) = self.store.set_job(job.id, state, Some(&value)) {
                tracing::error!("cannot record job {}: {e}", job.id);
            }
        }
    }

    /// The keys of the instances of `resource` under `parent`.
    pub async fn list(&self, resource: &str, parent: &Path) -> Result<Value, EngineError> {
        let active = self.active(resource)?;
        let d = active.description();
        let (parent_path, parent_instance, parent_configs) =
            self.resolve_parent(resource, parent)?;
        let mut keys: BTreeSet<String> = self
            .store
            .list(resource, &parent_path)?
            .into_iter()
            .map(|(_, r)| r.key)
            .collect();
        if d.listable && !d.managed_pkey {
            let refs: Vec<&Params> = parent_configs.iter().rev().collect();
            let config = inherit(&refs, &active.config);
            let pkey = parent_instance.and_then(|p| p.pkey);
            keys.extend(self.listed(active, &parent_path, pkey, &config).await?);
        }
        Ok(json!({"resource": resource, "keys": keys}))
    }

    /// Runs a request now. Everything logged meanwhile, the implementation's own records
    /// included, carries the resource, its implementation and the key.
    async fn execute(&self, request: Request) -> Result<Value, EngineError> {
        use tracing::Instrument;
        let physical = self
            .resources
            .get(&request.resource)
            .map(|a| a.description().physical.clone())
            .unwrap_or_default();
        let span = tracing::info_span!(
            "resource",
            resource = %request.resource,
            physical = %physical,
            key = %request.key
        );
        self.execute_now(request).instrument(span).await
    }

    async fn execute_now(&self, request: Request) -> Result<Value, EngineError> {
        let active = self.active(&request.resource)?;
        let d = active.description();
        let (parent_path, parent_instance, parent_configs) =
            self.resolve_parent(&request.resource, &request.parent)?;
        let key = Key::parse(d.lkey_kind, &request.key)
            .map_err(|e| EngineError::InvalidParameters(vec![(d.lkey.clone(), e.to_string())]))?;
        let folded = fold(&key, d.case_sensitive);
        let lock_name = if d.exclusive || d.listable || d.managed_pkey {
            d.resource.clone()
        } else {
            format!("{}{parent_path}/{folded}", d.resource)
        };
        let lock = self.lock(lock_name);
        let _guard = lock.lock().await;

        let refs: Vec<&Params> = parent_configs.iter().rev().collect();
        let config = inherit(&refs, &active.config);
        let parent_pkey = parent_instance.as_ref().and_then(|p| p.pkey.clone());
        let record = self.store.get(&d.resource, &parent_path, &folded)?;
        let listed = if d.listable && !d.managed_pkey {
            Some(
                self.listed(active, &parent_path, parent_pkey.clone(), &config)
                    .await?,
            )
        } else {
            None
        };
        let exists = record.is_some() || listed.as_ref().is_some_and(|l| l.contains(&folded));
        let name = format!("{} {}", d.resource, request.key);

        if request.op == Op::Create {
            if exists {
                if d.ignore_exists {
                    return Ok(
                        json!({"resource": d.resource, "key": request.key, "existed": true}),
                    );
                }
                return Err(EngineError::AlreadyExists(format!("{name} already exists")));
            }
            let mut instance_params: Params = request.params.clone().into_iter().collect();
            match instance_params.get(&d.lkey) {
                None => {
                    instance_params.set(d.lkey.clone(), request.key.clone());
                }
                Some(given) if given != request.key => {
                    return Err(EngineError::InvalidParameters(vec![(
                        d.lkey.clone(),
                        format!(
                            "the key parameter says {given:?} but the key is {:?}",
                            request.key
                        ),
                    )]));
                }
                Some(_) => {}
            }
            let params = d.instance.apply(&config, &instance_params, Op::Create)?;
            let pkey = if d.managed_pkey {
                let in_use: Vec<Key> = self
                    .store
                    .all(&d.resource)?
                    .iter()
                    .filter_map(|r| r.pkey.as_ref().and_then(key_from_json))
                    .collect();
                Some(
                    super::keys::allocate_physical_key(&in_use)
                        .map_err(|e| EngineError::Failed(e.to_string()))?,
                )
            } else {
                None
            };
            if request.dry_run {
                return Ok(json!({
                    "dry_run": true, "would": "create", "resource": d.resource, "key": request.key,
                    "pkey": pkey.as_ref().map(key_json), "params": reply_params(d, &params),
                }));
            }
            let instance = Instance {
                params,
                lkey: key.clone(),
                pkey,
                parent: parent_instance.map(Box::new),
            };
            let secrets = secrets_of(&[&instance.params]);
            let done = match active.implementation.run(Op::Create, instance).await {
                Ok(done) => done,
                Err(Failure::AlreadyExists(_)) if d.ignore_exists => {
                    return Ok(
                        json!({"resource": d.resource, "key": request.key, "existed": true}),
                    );
                }
                Err(f) => return Err(from_failure_masked(f, &secrets)),
            };
            let record = Record {
                key: request.key.clone(),
                pkey: done.pkey.as_ref().map(key_json),
                params: instance_values(d, &done.params),
                suspended: false,
            };
            self.store
                .put(&d.resource, &parent_path, &folded, &record)?;
            self.cache_update(&d.resource, &parent_path, &folded, true);
            tracing::info!(resource = %d.resource, physical = %d.physical, key = %request.key, "created");
            return Ok(reply(d, &request.key, &done, false));
        }

        if !exists {
            return Err(EngineError::NotFound(format!("{name} does not exist")));
        }
        let record = record.unwrap_or(Record {
            key: request.key.clone(),
            pkey: None,
            params: BTreeMap::new(),
            suspended: false,
        });
        let mut params = config.clone();
        for (k, v) in &record.params {
            params.set(k.clone(), v.clone());
        }
        params.set(d.lkey.clone(), record.key.clone());
        d.instance.mark_sensitive(&mut params);
        let mut secrets = secrets_of(&[&params]);
        let instance = Instance {
            params,
            lkey: key.clone(),
            pkey: record.pkey.as_ref().and_then(key_from_json),
            parent: parent_instance.map(Box::new),
        };
        match request.op {
            Op::Update => {
                let mut new: Params = request.params.clone().into_iter().collect();
                new.set(d.lkey.clone(), record.key.clone());
                let checked = d.instance.apply(&Params::new(), &new, Op::Update)?;
                let mut changes = Params::new();
                for (k, v) in checked.iter() {
                    if request.params.contains_key(k) {
                        changes.set(k, v);
                    }
                }
                if request.dry_run {
                    return Ok(json!({
                        "dry_run": true, "would": "update", "resource": d.resource,
                        "key": request.key, "params": reply_params(d, &changes),
                    }));
                }
                secrets.extend(secrets_of(&[&changes]));
                let mut done = active
                    .implementation
                    .update(instance, changes.clone())
                    .await
                    .map_err(|f| from_failure_masked(f, &secrets))?;
                for (k, v) in changes.iter() {
                    done.params.set(k, v);
                }
                let updated = Record {
                    params: instance_values(d, &done.params),
                    pkey: done.pkey.as_ref().map(key_json).or(record.pkey.clone()),
                    ..record
                };
                self.store
                    .put(&d.resource, &parent_path, &folded, &updated)?;
                Ok(reply(d, &request.key, &done, updated.suspended))
            }
            Op::Get => {
                let done = active
                    .implementation
                    .run(Op::Get, instance)
                    .await
                    .map_err(|f| from_failure_masked(f, &secrets))?;
                Ok(reply(d, &request.key, &done, record.suspended))
            }
            Op::Delete => {
                let own_path = format!("{parent_path}/{}:{folded}", d.resource);
                if self.store.has_children(&own_path)? {
                    return Err(EngineError::Failed(format!(
                        "{name} still has child resources; delete them first"
                    )));
                }
                if request.dry_run {
                    return Ok(
                        json!({"dry_run": true, "would": "delete", "resource": d.resource, "key": request.key}),
                    );
                }
                match active.implementation.run(Op::Delete, instance).await {
                    Ok(_) => {}
                    // Gone already: forget it too.
                    Err(Failure::NotFound(_)) => {}
                    Err(f) => return Err(from_failure_masked(f, &secrets)),
                }
                self.store.delete(&d.resource, &parent_path, &folded)?;
                self.cache_update(&d.resource, &parent_path, &folded, false);
                tracing::info!(resource = %d.resource, physical = %d.physical, key = %request.key, "deleted");
                Ok(json!({"resource": d.resource, "key": request.key, "deleted": true}))
            }
            Op::Suspend | Op::Resume => {
                if request.dry_run {
                    return Ok(
                        json!({"dry_run": true, "would": request.op.as_str(), "resource": d.resource, "key": request.key}),
                    );
                }
                let done = active
                    .implementation
                    .run(request.op, instance)
                    .await
                    .map_err(|f| from_failure_masked(f, &secrets))?;
                let suspended = request.op == Op::Suspend;
                let updated = Record {
                    params: instance_values(d, &done.params),
                    suspended,
                    ..record
                };
                self.store
                    .put(&d.resource, &parent_path, &folded, &updated)?;
                Ok(reply(d, &request.key, &done, suspended))
            }
            Op::Create => unreachable!("handled above"),
        }
    }
}

/// An implementation's description as JSON (`offline` as configured).
pub fn describe_json(d: &Description, offline: bool) -> Value {
    json!({
        "resource": d.resource,
        "physical": d.physical,
        "lkey": {"name": d.lkey, "kind": d.lkey_kind.as_str()},
        "description": d.summary,
        "parent": d.parent,
        "managed_pkey": d.managed_pkey,
        "instance_schema": d.instance,
        "config_schema": d.config,
        "exclusive": d.exclusive,
        "offline": offline,
        "ignore_exists": d.ignore_exists,
        "cacheable": d.cacheable,
        "case_sensitive": d.case_sensitive,
        "listable": d.listable,
    })
}

/// The instance parameters of a collection (config attributes are not kept).
fn instance_values(d: &Description, params: &Params) -> BTreeMap<String, String> {
    params
        .iter()
        .filter(|(k, _)| d.instance.prop(k).is_some())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect()
}

/// The values of `params` that are instance parameters (`instance`) or config attributes
/// (`!instance`), sensitive ones masked, for a reply.
fn masked(d: &Description, params: &Params, instance: bool) -> Value {
    let mut out = serde_json::Map::new();
    for (k, v) in params.iter() {
        if d.instance.prop(k).is_some() != instance {
            continue;
        }
        let schema = if instance { &d.instance } else { &d.config };
        let sensitive = params.is_sensitive(k) || schema.prop(k).is_some_and(|p| p.is_sensitive());
        out.insert(
            k.to_string(),
            Value::String(if sensitive {
                "***".into()
            } else {
                v.to_string()
            }),
        );
    }
    Value::Object(out)
}

/// The instance parameters for a reply, sensitive values masked.
fn reply_params(d: &Description, params: &Params) -> Value {
    masked(d, params, true)
}

fn reply(d: &Description, key: &str, instance: &Instance, suspended: bool) -> Value {
    json!({
        "resource": d.resource,
        "key": key,
        "pkey": instance.pkey.as_ref().map(key_json),
        "suspended": suspended,
        "params": reply_params(d, &instance.params),
        // The config attributes (own and inherited) the implementation saw.
        "config": masked(d, &instance.params, false),
    })
}

fn request_json(r: &Request) -> Value {
    json!({
        "op": r.op, "resource": r.resource, "parent": r.parent, "key": r.key,
        "params": r.params, "dry_run": r.dry_run,
    })
}

fn request_from_json(v: &Value) -> Option<Request> {
    Some(Request {
        op: serde_json::from_value(v.get("op")?.clone()).ok()?,
        resource: v.get("resource")?.as_str()?.to_string(),
        parent: serde_json::from_value(v.get("parent")?.clone()).ok()?,
        key: v.get("key")?.as_str()?.to_string(),
        params: serde_json::from_value(v.get("params")?.clone()).ok()?,
        dry_run: v.get("dry_run")?.as_bool()?,
    })
}

#[cfg(test)]
mod tests {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use super::super::implementation::BoxFuture;
    use super::super::keys::KeyKind;
    use super::super::schema::{Prop, PropType, Schema};
    use super::*;

    /// An implementation keeping its "physical" instances in memory.
    struct Fake {
        d: Description,
        physical: Mutex<BTreeMap<String, Params>>,
        enumerations: AtomicUsize,
        creates: AtomicUsize,
        /// Creates running now, and the most that ever ran at once.
        running: AtomicUsize,
        most_running: AtomicUsize,
    }

    fn description(resource: &str, parent: Option<&str>) -> Description {
        Description {
            resource: resource.into(),
            physical: format!("fake_{resource}"),
            lkey: "name".into(),
            lkey_kind: KeyKind::Str,
            summary: String::new(),
            parent: parent.map(str::to_string),
            managed_pkey: false,
            instance: Schema::new(vec![
                Prop::new("name", PropType::Str).mark_key(),
                Prop::new("size", PropType::Unum).with_default("1"),
                Prop::new("secret", PropType::Password).mark_optional(),
                Prop::new("state", PropType::Str).mark_readonly(),
            ])
            .unwrap(),
            config: Schema::new(vec![
                Prop::new(format!("{resource}dir"), PropType::Path).with_default("/srv"),
            ])
            .unwrap(),
            exclusive: false,
            offline: false,
            ignore_exists: false,
            cacheable: true,
            case_sensitive: false,
            listable: false,
        }
    }

    impl Fake {
        fn new(d: Description) -> Arc<Self> {
            Arc::new(Self {
                d,
                physical: Mutex::new(BTreeMap::new()),
                enumerations: AtomicUsize::new(0),
                creates: AtomicUsize::new(0),
                running: AtomicUsize::new(0),
                most_running: AtomicUsize::new(0),
            })
        }
    }

    impl Implementation for Fake {
        fn description(&self) -> &Description {
            &self.d
        }

        fn run(&self, op: Op, mut instance: Instance) -> BoxFuture<'_, Result<Instance, Failure>> {
            Box::pin(async move {
                let key = instance.lkey.folded(self.d.case_sensitive).val();
                if op == Op::Create {
                    self.creates.fetch_add(1, Ordering::SeqCst);
                    let now = self.running.fetch_add(1, Ordering::SeqCst) + 1;
                    self.most_running.fetch_max(now, Ordering::SeqCst);
                    // Give a concurrent create the chance to run into the lock.
                    tokio::time::sleep(std::time::Duration::from_millis(20)).await;
                    self.running.fetch_sub(1, Ordering::SeqCst);
                }
                // An implementation that quotes what it was given in its errors.
                if instance.params.get("size") == Some("13") {
                    let secret = instance.params.get("secret").unwrap_or_default();
                    return Err(match op {
                        Op::Get => Failure::NotFound(format!("no memo with secret {secret}")),
                        _ => Failure::Failed(format!("unlucky size with secret {secret}")),
                    });
                }
                let mut physical = self.physical.lock().unwrap();
                match op {
                    Op::Create => {
                        if physical.contains_key(&key) {
                            return Err(Failure::AlreadyExists(key));
                        }
                        instance.params.set("state", "created");
                        physical.insert(key, instance.params.clone());
                    }
                    Op::Delete => {
                        physical.remove(&key).ok_or(Failure::NotFound(key))?;
                    }
                    _ => {
                        physical.get(&key).ok_or(Failure::NotFound(key.clone()))?;
                        instance.params.set("state", op.as_str());
                    }
                }
                Ok(instance)
            })
        }

        fn update(
            &self,
            instance: Instance,
            new: Params,
        ) -> BoxFuture<'_, Result<Instance, Failure>> {
            Box::pin(async move {
                let mut instance = instance;
                for (k, v) in new.iter() {
                    instance.params.set(k, v);
                }
                Ok(instance)
            })
        }

        fn enumerate(&self, _: Option<Key>, _: Params) -> BoxFuture<'_, Result<Vec<Key>, Failure>> {
            Box::pin(async move {
                self.enumerations.fetch_add(1, Ordering::SeqCst);
                Ok(self
                    .physical
                    .lock()
                    .unwrap()
                    .keys()
                    .map(|k| Key::Str(k.clone()))
                    .collect())
            })
        }
    }

    fn engine_with(imps: Vec<Arc<Fake>>) -> Arc<Engine> {
        let resources = imps
            .into_iter()
            .map(|imp| {
                let config = imp.d.config.check_config(&Params::new()).unwrap();
                (
                    imp.d.resource.clone(),
                    Active {
                        offline: imp.d.offline,
                        implementation: imp,
                        config,
                    },
                )
            })
            .collect();
        Engine::new(resources, InstanceStore::open(None).unwrap())
    }

    fn req(op: Op, resource: &str, key: &str, params: &[(&str, &str)]) -> Request {
        Request {
            op,
            resource: resource.into(),
            parent: Vec::new(),
            key: key.into(),
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
            dry_run: false,
        }
    }

    #[tokio::test]
    async fn the_six_operations_and_their_errors() {
        let fake = Fake::new(description("memo", None));
        let e = engine_with(vec![fake.clone()]);
        let created = e
            .call(req(Op::Create, "memo", "Alpha", &[("secret", "hunter2")]))
            .await
            .unwrap();
        assert_eq!(created["params"]["size"], "1", "defaults are applied");
        assert_eq!(created["params"]["secret"], "***", "passwords never leave");
        assert_eq!(created["params"]["state"], "created");
        // Keys compare case-insensitively unless the resource says otherwise.
        let err = e
            .call(req(Op::Create, "memo", "ALPHA", &[]))
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::AlreadyExists(_)), "{err:?}");
        assert_eq!(
            fake.creates.load(Ordering::SeqCst),
            1,
            "answered by the engine"
        );
        let got = e.call(req(Op::Get, "memo", "alpha", &[])).await.unwrap();
        assert_eq!(got["params"]["state"], "get");
        let updated = e
            .call(req(Op::Update, "memo", "alpha", &[("size", "5")]))
            .await
            .unwrap();
        assert_eq!(updated["params"]["size"], "5");
        let suspended = e
            .call(req(Op::Suspend, "memo", "alpha", &[]))
            .await
            .unwrap();
        assert_eq!(suspended["suspended"], true);
        e.call(req(Op::Resume, "memo", "alpha", &[])).await.unwrap();
        e.call(req(Op::Delete, "memo", "alpha", &[])).await.unwrap();
        for op in [Op::Get, Op::Update, Op::Delete, Op::Suspend, Op::Resume] {
            let err = e.call(req(op, "memo", "alpha", &[])).await.unwrap_err();
            assert!(matches!(err, EngineError::NotFound(_)), "{op}: {err:?}");
        }
        // Bad parameters are named, all at once, before the implementation runs.
        let err = e
            .call(req(
                Op::Create,
                "memo",
                "beta",
                &[("size", "-1"), ("state", "x"), ("colour", "red")],
            ))
            .await
            .unwrap_err();
        let EngineError::InvalidParameters(list) = err else {
            panic!()
        };
        let names: Vec<&str> = list.iter().map(|(n, _)| n.as_str()).collect();
        assert_eq!(names, ["size", "state", "colour"]);
        assert!(!list.iter().any(|(_, m)| m.contains("hunter2")));
        let err = e.call(req(Op::Get, "nope", "x", &[])).await.unwrap_err();
        assert!(
            err.to_string().contains("configured resources: memo"),
            "{err}"
        );
        // A dry run answers what would be done and does nothing.
        let mut dry = req(Op::Create, "memo", "gamma", &[]);
        dry.dry_run = true;
        let answer = e.call(dry).await.unwrap();
        assert_eq!(answer["would"], "create");
        assert!(matches!(
            e.call(req(Op::Get, "memo", "gamma", &[]))
                .await
                .unwrap_err(),
            EngineError::NotFound(_)
        ));
    }

    #[tokio::test]
    async fn dry_runs_of_every_operation_change_nothing() {
        let fake = Fake::new(description("memo", None));
        let e = engine_with(vec![fake.clone()]);
        e.call(req(Op::Create, "memo", "alpha", &[("size", "2")]))
            .await
            .unwrap();
        for (op, params) in [
            (Op::Update, &[("size", "9")][..]),
            (Op::Suspend, &[][..]),
            (Op::Resume, &[][..]),
            (Op::Delete, &[][..]),
        ] {
            let mut dry = req(op, "memo", "alpha", params);
            dry.dry_run = true;
            let answer = e.call(dry).await.unwrap();
            assert_eq!(answer["dry_run"], true, "{answer}");
            assert_eq!(answer["would"], op.as_str(), "{answer}");
        }
        // A dry run checks what a real call would: bad values and missing instances.
        let mut bad = req(Op::Update, "memo", "alpha", &[("size", "-1")]);
        bad.dry_run = true;
        assert!(matches!(
            e.call(bad).await.unwrap_err(),
            EngineError::InvalidParameters(_)
        ));
        let mut missing = req(Op::Delete, "memo", "nobody", &[]);
        missing.dry_run = true;
        assert!(matches!(
            e.call(missing).await.unwrap_err(),
            EngineError::NotFound(_)
        ));
        let got = e.call(req(Op::Get, "memo", "alpha", &[])).await.unwrap();
        assert_eq!(got["params"]["size"], "2", "not updated: {got}");
        assert_eq!(got["suspended"], false, "not suspended: {got}");
        assert!(
            fake.physical.lock().unwrap().contains_key("alpha"),
            "not deleted"
        );
    }

    #[tokio::test]
    async fn listable_resources_are_answered_from_the_cache() {
        let mut d = description("site", None);
        d.listable = true;
        let fake = Fake::new(d);
        fake.physical
            .lock()
            .unwrap()
            .insert("legacy".into(), Params::new());
        let e = engine_with(vec![fake.clone()]);
        let err = e
            .call(req(Op::Create, "site", "legacy", &[]))
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::AlreadyExists(_)), "{err:?}");
        // An instance the engine never created, but the implementation lists, can be used.
        e.call(req(Op::Get, "site", "legacy", &[])).await.unwrap();
        e.call(req(Op::Create, "site", "new", &[])).await.unwrap();
        let listed = e.list("site", &Vec::new()).await.unwrap();
        assert_eq!(listed["keys"], json!(["legacy", "new"]));
        assert_eq!(
            fake.enumerations.load(Ordering::SeqCst),
            1,
            "enumerated once"
        );

        // Cacheable(false): every call asks the implementation again.
        let mut d = description("usage", None);
        d.listable = true;
        d.cacheable = false;
        let fresh = Fake::new(d);
        let e = engine_with(vec![fresh.clone()]);
        e.call(req(Op::Create, "usage", "a", &[])).await.unwrap();
        e.call(req(Op::Get, "usage", "a", &[])).await.unwrap();
        assert_eq!(fresh.enumerations.load(Ordering::SeqCst), 2);
    }

    #[tokio::test]
    async fn ignore_exists_managed_keys_and_case_sensitivity() {
        let mut d = description("ip", None);
        d.ignore_exists = true;
        d.managed_pkey = true;
        d.case_sensitive = true;
        let e = engine_with(vec![Fake::new(d)]);
        let a = e.call(req(Op::Create, "ip", "a", &[])).await.unwrap();
        let b = e.call(req(Op::Create, "ip", "A", &[])).await.unwrap();
        assert_eq!(a["pkey"], json!({"num": 1}));
        assert_eq!(
            b["pkey"],
            json!({"num": 2}),
            "case-sensitive keys are different"
        );
        let again = e.call(req(Op::Create, "ip", "a", &[])).await.unwrap();
        assert_eq!(again["existed"], true);
    }

    #[tokio::test]
    async fn concurrent_creates_of_managed_keys_get_distinct_keys() {
        let mut d = description("ip", None);
        d.managed_pkey = true;
        let e = engine_with(vec![Fake::new(d)]);
        let calls = ["a", "b", "c", "d"].map(|k| e.call(req(Op::Create, "ip", k, &[])));
        let replies = futures_util::future::join_all(calls).await;
        let mut keys: Vec<Value> = replies
            .into_iter()
            .map(|r| r.unwrap()["pkey"].clone())
            .collect();
        keys.sort_by_key(|k| k["num"].as_u64());
        assert_eq!(
            keys,
            [1, 2, 3, 4].map(|n| json!({ "num": n })),
            "each create got its own physical key"
        );
    }

    #[tokio::test]
    async fn exclusive_resources_run_one_call_at_a_time() {
        let plain = Fake::new(description("memo", None));
        let mut d = description("dns", None);
        d.exclusive = true;
        let exclusive = Fake::new(d);
        let e = engine_with(vec![plain.clone(), exclusive.clone()]);
        for resource in ["memo", "dns"] {
            let calls = ["a", "b", "c"].map(|k| e.call(req(Op::Create, resource, k, &[])));
            for reply in futures_util::future::join_all(calls).await {
                reply.unwrap();
            }
        }
        assert_eq!(exclusive.most_running.load(Ordering::SeqCst), 1);
        assert!(
            plain.most_running.load(Ordering::SeqCst) > 1,
            "different keys of a plain resource run side by side"
        );
    }

    #[tokio::test]
    async fn an_implementations_messages_never_show_a_password() {
        let e = engine_with(vec![Fake::new(description("memo", None))]);
        let err = e
            .call(req(
                Op::Create,
                "memo",
                "a",
                &[("size", "13"), ("secret", "hunter2")],
            ))
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::Failed(_)), "{err:?}");
        assert_eq!(err.to_string(), "unlucky size with secret ***");

        e.call(req(Op::Create, "memo", "b", &[("secret", "swordfish")]))
            .await
            .unwrap();
        let updated = e
            .call(req(Op::Update, "memo", "b", &[("size", "13")]))
            .await
            .unwrap();
        assert_eq!(updated["params"]["secret"], "***");
        let err = e.call(req(Op::Get, "memo", "b", &[])).await.unwrap_err();
        assert!(matches!(err, EngineError::NotFound(_)), "{err:?}");
        assert_eq!(
            err.to_string(),
            "resource not found: no memo with secret ***"
        );
    }

    #[tokio::test]
    async fn children_inherit_config_and_need_their_parents() {
        let account = Fake::new(description("account", None));
        let hosting = Fake::new(description("hosting", Some("account")));
        let e = engine_with(vec![account, hosting.clone()]);
        let mut child = req(Op::Create, "hosting", "example.com", &[]);
        child.parent = vec![("account".into(), "alice".into())];
        let err = e.call(child.clone()).await.unwrap_err();
        assert!(
            matches!(err, EngineError::NotFound(ref m) if m.contains("account alice")),
            "{err:?}"
        );
        e.call(req(Op::Create, "account", "alice", &[]))
            .await
            .unwrap();
        e.call(child.clone()).await.unwrap();
        let stored = hosting.physical.lock().unwrap()["example.com"].clone();
        assert_eq!(
            stored.get("accountdir"),
            Some("/srv"),
            "the parent's config is inherited"
        );
        assert_eq!(stored.get("hostingdir"), Some("/srv"));
        // A child without its parent path, or with a wrong one, is refused.
        let err = e
            .call(req(Op::Get, "hosting", "example.com", &[]))
            .await
            .unwrap_err();
        assert!(matches!(err, EngineError::InvalidParameters(_)), "{err:?}");
        // A parent with children cannot go.
        let err = e
            .call(req(Op::Delete, "account", "alice", &[]))
            .await
            .unwrap_err();
        assert!(err.to_string().contains("child resources"), "{err}");
        let mut delete_child = child;
        delete_child.op = Op::Delete;
        e.call(delete_child).await.unwrap();
        e.call(req(Op::Delete, "account", "alice", &[]))
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn of_two_concurrent_creates_exactly_one_succeeds() {
        let fake = Fake::new(description("memo", None));
        let e = engine_with(vec![fake.clone()]);
        let (a, b) = tokio::join!(
            e.call(req(Op::Create, "memo", "same", &[])),
            e.call(req(Op::Create, "memo", "same", &[]))
        );
        assert_eq!(a.is_ok() as u8 + b.is_ok() as u8, 1, "{a:?} {b:?}");
        assert_eq!(fake.creates.load(Ordering::SeqCst), 1);
    }

    #[tokio::test]
    async fn offline_operations_are_queued_durably() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("resources.sqlite");
        let mut d = description("mailbox", None);
        d.offline = true;
        let fake = Fake::new(d.clone());
        let resources = |fake: Arc<Fake>| {
            let config = fake.d.config.check_config(&Params::new()).unwrap();
            BTreeMap::from([(
                "mailbox".to_string(),
                Active {
                    offline: fake.d.offline,
                    implementation: fake,
                    config,
                },
            )])
        };
        // The first process queues the job and stops before running it.
        let e = Engine::new(resources(fake), InstanceStore::open(Some(&path)).unwrap());
        let queued = e
            .call(req(Op::Create, "mailbox", "bob", &[]))
            .await
            .unwrap();
        let id = queued["job"].as_i64().unwrap();
        assert_eq!(e.job(id).unwrap()["state"], "queued");
        let bad = e
            .call(req(Op::Create, "mailbox", "x", &[("size", "no")]))
            .await;
        assert!(
            matches!(bad, Err(EngineError::InvalidParameters(_))),
            "checked before queueing"
        );
        drop(e);
        // The next process finds it and runs it.
        let fake = Fake::new(d);
        let e = Engine::new(
            resources(fake.clone()),
            InstanceStore::open(Some(&path)).unwrap(),
        );
        let worker = tokio::spawn(e.clone().run_jobs());
        for _ in 0..200 {
            if e.job(id).unwrap()["state"] == "done" {
                break;
            }
            tokio::time::sleep(std::time::Duration::from_millis(10)).await;
        }
        assert_eq!(e.job(id).unwrap()["state"], "done");
        assert!(fake.physical.lock().unwrap().contains_key("bob"));
        worker.abort();
    }
}
