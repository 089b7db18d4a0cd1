//! The one place that runs `bindgen!`: typed host bindings for the `paasm:platform` imports.
//!
//! Bindings are generated for `all-imports`, the largest world (every guest's imports plus the
//! manager's `controller` and `agents` and the providers' `parameters`); a component simply
//! imports fewer of them.
//! Every import is trappable: a host failure (the state database cannot be written, say) ends
//! the guest's call with a trap instead of handing the guest an error it never asked to
//! handle. `controller` and `agents` are async on the host side: they wait for nodes to boot
//! and for agents to answer without blocking a thread. The host side of each interface lives
//! in `platform/`.

wasmtime::component::bindgen!({
    path: "../wit/platform",
    world: "paasm:platform/all-imports",
    imports: {
        "paasm:platform/controller": async | trappable,
        "paasm:platform/agents": async | trappable,
        default: trappable,
    },
    with: {
        "paasm:platform/parameters.parameters": crate::platform::Parameters,
    },
});

/// Typed bindings of the `paasm:resource/provider` world: its exports (`describe`, `create`,
/// ...) and the resource types; the platform imports are the ones generated above.
pub mod provider {
    wasmtime::component::bindgen!({
        path: ["../wit/platform", "../wit/resource"],
        world: "paasm:%resource/provider",
        imports: { default: trappable },
        exports: { default: async },
        with: {
            "paasm:platform": super::paasm::platform,
        },
    });
}
