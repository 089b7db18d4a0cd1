//! What the engine needs of a resource implementation, in the engine's own types: its
//! description (the seed's attributes, with checked schemas) and its operations.
//!
//! [`Implementation`] is a trait so the engine's semantics are tested with an in-memory
//! implementation; `component.rs` implements it for provider components.

use std::future::Future;
use std::pin::Pin;

use super::keys::{Key, KeyKind};
use super::params::Params;
use super::schema::{Op, Schema};

/// A boxed future, so [`Implementation`] stays usable as a trait object.
pub type BoxFuture<'a, T> = Pin<Box<dyn Future<Output = T> + Send + 'a>>;

/// An implementation's attributes and schemas (the seed's class attributes).
#[derive(Debug, Clone)]
pub struct Description {
    /// `ResourceName`: the logical name (`hosting`).
    pub resource: String,
    /// `PhysicalName`: this implementation (`nginx_vhost`).
    pub physical: String,
    /// `LKey`: the name of the logical key parameter and its kind.
    pub lkey: String,
    pub lkey_kind: KeyKind,
    /// `ResourceDescription`.
    pub summary: String,
    /// `ParentName`.
    pub parent: Option<String>,
    /// `ManagedPKey`.
    pub managed_pkey: bool,
    /// `ResourceSchema`: instance parameters and config attributes.
    pub instance: Schema,
    pub config: Schema,
    pub exclusive: bool,
    pub offline: bool,
    pub ignore_exists: bool,
    pub cacheable: bool,
    pub case_sensitive: bool,
    pub listable: bool,
}

/// Why an implementation's operation failed (the seed's exception classes).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Failure {
    AlreadyExists(String),
    NotFound(String),
    InvalidParameter {
        name: String,
        message: String,
    },
    /// Anything else, the guest's traps included.
    Failed(String),
}

/// One instance's parameter collection as an operation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Instance {
    /// Config attributes (own and inherited) merged with the instance parameters.
    pub params: Params,
    pub lkey: Key,
    pub pkey: Option<Key>,
    /// The parent instance's collection, for a child.
    pub parent: Option<Box<Instance>>,
}

/// A resource implementation.
pub trait Implementation: Send + Sync {
    /// Its description, read once when it was loaded.
    fn description(&self) -> &Description;

    /// Runs `op` (not `update`) on `instance`; the collection as the implementation left it.
    fn run(&self, op: Op, instance: Instance) -> BoxFuture<'_, Result<Instance, Failure>>;

    /// Runs `update` with the parameters to change.
    fn update(&self, instance: Instance, new: Params) -> BoxFuture<'_, Result<Instance, Failure>>;

    /// The physical keys of the instances under the parent with physical key `parent_pkey`.
    fn enumerate(
        &self,
        parent_pkey: Option<Key>,
        config: Params,
    ) -> BoxFuture<'_, Result<Vec<Key>, Failure>>;
}
