//! The IaaS layer: the clouds a service's nodes run on and how those nodes boot.
//!
//! - `context`: contextualization, a node's boot script assembled from the configuration tree.
//! - `cloud`: the driver interface (start instances from a script, kill, list).
//! - `local`: the embedded default driver, nodes as process trees on loopback addresses.
//! - `controller`: creates nodes, waits for their agents, replaces failures, within bounds.

pub mod cloud;
pub mod context;
pub mod controller;
pub mod local;
