//! One integration-test binary: every test drives the real `paasm` binary over real HTTP on
//! loopback with real guest components built by `cargo xtask build-guests`.

mod agent;
mod agent_conformance;
mod clouds;
mod conformance;
mod conpaas;
mod controller;
mod dashboard;
mod ec2;
mod faults;
mod frontend;
mod jsonrpc2;
mod managers;
mod opennebula;
mod pg;
mod provider_conformance;
mod providers;
mod referrers;
mod registry;
mod resources;
mod sandbox;
mod skeletons;
mod store;
mod support;
mod tls;
mod types;
