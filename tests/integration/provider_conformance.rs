//! The provider conformance suite: the cases in `tests/conformance/provider/`, run unchanged
//! through a real `paasm resources` against every implementation of the logical resource
//! `note` (the provider world's example, in every language, and `paasm new --world provider`'s
//! skeletons, which are copies of it): the six operations and what the provider reports back,
//! already-exists and not-found, the schema's and the provider's own refusals, and `list`
//! through the provider's `enumerate`.

use crate::conformance::run_suite;
use crate::resources::Resources;

/// The default `maxlength`: the longest text a note holds (`${LONG_TEXT}` is one character more).
const MAX_LENGTH: usize = 280;

/// Runs the suite against the component `<components>/<component>.wasm` as the active
/// implementation of `note`.
pub fn provider_conforms(component: &str) {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let config = format!(
        "[implementations]\nnote_state = \"{component}.wasm\"\n\n\
         [resources.note]\nimplementation = \"note_state\"\n"
    );
    let r = Resources::start(&config, &dir.path().join("data"));
    let long = "x".repeat(MAX_LENGTH + 1);
    runtime.block_on(run_suite(
        &r,
        "provider",
        component,
        &[("${LONG_TEXT}", &long)],
    ));
}

#[test]
fn the_rust_note_provider_conforms() {
    provider_conforms("note-provider");
}

#[test]
fn the_python_note_provider_conforms() {
    provider_conforms("note-provider-py");
}

#[test]
fn the_javascript_note_provider_conforms() {
    provider_conforms("note-provider-js");
}

#[test]
fn the_c_note_provider_conforms() {
    provider_conforms("note-provider-c");
}

#[test]
fn the_go_note_provider_conforms() {
    provider_conforms("note-provider-go");
}
