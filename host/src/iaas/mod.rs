//! The IaaS layer: the clouds a service's nodes run on and how those nodes boot.
//!
//! - `context`: contextualization, a node's boot script assembled from the configuration tree.
//! - `cloud`: the driver interface (start instances from a script, kill, list).
//! - `local`: the embedded default driver, nodes as process trees on loopback addresses.
//! - `netns`: nodes as Linux network namespaces on a bridge the driver owns.
//! - `ec2`: Amazon EC2's Query API, SigV4-signed, over the host's HTTP client.
//! - `opennebula`: OpenNebula's XML-RPC API.
//! - `hypervisor`: machines for an EC2-compatible API that starts none (moto), as netns hosts.
//! - `http`: cloud API endpoints and one request to them, plain or over TLS.
//! - `controller`: creates nodes, waits for their agents, replaces failures, within bounds.

pub mod cloud;
pub mod context;
pub mod controller;
pub mod ec2;
pub mod http;
pub mod hypervisor;
pub mod local;
pub mod netns;
pub mod opennebula;
