//! The one place that runs `bindgen!`: typed host bindings for the `paasm:platform` imports.
//!
//! Every import is synchronous and trappable: a host failure (the state database cannot be
//! written, say) ends the guest's call with a trap instead of handing the guest an error it
//! never asked to handle. The host side of each interface lives in `platform/`.

wasmtime::component::bindgen!({
    path: "../wit/platform",
    world: "paasm:platform/imports",
    imports: { default: trappable },
});
