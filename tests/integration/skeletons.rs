//! `paasm new`'s agent skeletons conform: `cargo xtask test` has the release `paasm` write one in
//! every language into a scratch guests workspace and builds it with the builders of
//! `cargo xtask build-guests` (xtask/src/skeletons.rs); each must then pass the agent
//! conformance cases exactly as generated, answering like the Rust helloworld agent.

use crate::agent_conformance::conforms;

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
