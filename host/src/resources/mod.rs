//! The H-Sphere resources subsystem: pluggable resource implementations chosen by
//! configuration, with typed schemas, keys, listable caches and a parent/child hierarchy.
//!
//! A *resource* has a logical name known to the control panel (`hosting`) and any number of
//! *implementations* (`iis5_website`, ...), of which configuration makes exactly one active.
//! Each implementation is a component exporting the seed's six methods (create, get, update,
//! delete, suspend, resume) and describing itself: its schemas, its logical key, its parent,
//! and its attributes (managed physical keys, exclusive, ignore-exists, cacheable, case
//! sensitive, listable). The engine built on this module will hold:
//!
//! - a **registry**: resource name → active implementation, resolved at configuration load;
//! - **schemas**: every call's parameters checked, defaulted and completed before the guest
//!   runs, with every problem reported at once;
//! - **keys**: logical keys from the parameters, physical keys from the implementation or
//!   allocated by the host;
//! - **parameters**: one collection per call, configuration attributes (inherited down the
//!   hierarchy) plus instance parameters;
//! - a **cache** of listable resources' instances, from which the host answers
//!   already-exists and not-found itself;
//! - **locks**: calls on one instance serialised by logical key (per resource name when the
//!   implementation is exclusive);
//! - the **hierarchy**: a child reaches its parent's instance through the parameter named as
//!   the parent's key.
//!
//! Its pure core is plain Rust with no wasmtime and no I/O, unit-tested without components:
//!
//! - [`schema`]: property types, schemas (seed XML and JSON forms) and the rules that turn a
//!   caller's parameters into the implementation's ([`Schema::apply`]).
//! - [`value`]: the validation and canonical form of one value of each property type.
//! - [`params`]: parameter collections, typed accessors, redaction marks and configuration
//!   inheritance down the hierarchy.
//! - [`keys`]: logical and physical keys, their algebra, and the managed physical key
//!   allocator.
//!
//! The flow of one call's parameters:
//!
//! ```text
//! config file attrs --config Schema::check_config--> own config
//! parents' configs (nearest first) + own config --inherit--> config
//! config + caller's params --instance Schema::apply(op)--> params the implementation sees
//! ```

pub mod component;
pub mod engine;
pub mod implementation;
pub mod keys;
pub mod params;
pub mod registry;
pub mod schema;
pub mod server;
pub mod store;
pub mod value;

pub use keys::{Key, KeyError, KeyKind, allocate_physical_key};
pub use params::{Params, inherit};
pub use schema::{
    Choice, Op, ParamError, ParamErrors, Prop, PropType, Redacted, Schema, SchemaError,
    UnknownPropType,
};
pub use value::InvalidValue;
