//! The one place that runs `bindgen!`: typed host bindings for the `paasm:platform` imports.
//!
//! Bindings are generated for `manager-imports`, the largest world (every guest's imports plus
//! the manager's `controller` and `agents`); an agent component simply imports fewer of them.
//! Every import is trappable: a host failure (the state database cannot be written, say) ends
//! the guest's call with a trap instead of handing the guest an error it never asked to
//! handle. `controller` and `agents` are async on the host side: they wait for nodes to boot
//! and for agents to answer without blocking a thread. The host side of each interface lives
//! in `platform/`.

wasmtime::component::bindgen!({
    path: "../wit/platform",
    world: "paasm:platform/manager-imports",
    imports: {
        "paasm:platform/controller": async | trappable,
        "paasm:platform/agents": async | trappable,
        default: trappable,
    },
});
