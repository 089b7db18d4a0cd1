//! `paasm new`'s skeletons conform: `cargo xtask test` has the release `paasm` write an agent,
//! a manager (with its service package) and a resource provider in every language into a scratch
//! guests workspace and builds them with the builders of `cargo xtask build-guests`
//! (xtask/src/skeletons.rs); each must then pass its world's conformance cases exactly as
//! generated: the agent cases, answering like the Rust helloworld agent, the manager cases, as
//! a service of its own, or the provider cases, as the active implementation of `note`.

use crate::agent_conformance::conforms;
use crate::provider_conformance::provider_conforms;

#[test]
fn the_rust_agent_skeleton_conforms() {
    conforms("skeleton-agent-rs");
}

#[test]
fn the_python_agent_skeleton_conforms() {
    conforms("skeleton-agent-py");
}

#[test]
fn the_javascript_agent_skeleton_conforms() {
    conforms("skeleton-agent-js");
}

#[test]
fn the_c_agent_skeleton_conforms() {
    conforms("skeleton-agent-c");
}

#[test]
fn the_go_agent_skeleton_conforms() {
    conforms("skeleton-agent-go");
}

#[test]
fn the_rust_manager_skeleton_passes_the_manager_conformance_suite() {
    crate::managers::run_manager_conformance("skeleton-manager-rs");
}

#[test]
fn the_python_manager_skeleton_passes_the_manager_conformance_suite() {
    crate::managers::run_manager_conformance("skeleton-manager-py");
}

#[test]
fn the_javascript_manager_skeleton_passes_the_manager_conformance_suite() {
    crate::managers::run_manager_conformance("skeleton-manager-js");
}

#[test]
fn the_go_manager_skeleton_passes_the_manager_conformance_suite() {
    crate::managers::run_manager_conformance("skeleton-manager-go");
}

#[test]
fn the_c_manager_skeleton_passes_the_manager_conformance_suite() {
    crate::managers::run_manager_conformance("skeleton-manager-c");
}

#[test]
fn the_rust_provider_skeleton_passes_the_provider_conformance_suite() {
    provider_conforms("skeleton-provider-rs");
}

#[test]
fn the_python_provider_skeleton_passes_the_provider_conformance_suite() {
    provider_conforms("skeleton-provider-py");
}

#[test]
fn the_javascript_provider_skeleton_passes_the_provider_conformance_suite() {
    provider_conforms("skeleton-provider-js");
}

#[test]
fn the_c_provider_skeleton_passes_the_provider_conformance_suite() {
    provider_conforms("skeleton-provider-c");
}

#[test]
fn the_go_provider_skeleton_passes_the_provider_conformance_suite() {
    provider_conforms("skeleton-provider-go");
}
