//! The lifecycle hooks a service component exports (`paasm:service/lifecycle`), with defaults.
//!
//! The host owns the service lifecycle (states, nodes, billing) and calls these hooks around
//! it. Implement [`Lifecycle`] for the component type, overriding only the hooks the service
//! needs, and wire it up with one line:
//!
//! ```ignore
//! struct Component;
//!
//! impl paasm_sdk::Lifecycle for Component {}
//!
//! paasm_sdk::export_lifecycle!(Component);
//! export!(Component); // the guest's own generated export macro
//! ```
//!
//! A component that exports nothing but the lifecycle (no `queries`, `commands` or `uploads`)
//! needs no bindings of its own: `paasm_sdk::bindings::export_agent!(Component);` exports the
//! SDK's lifecycle directly. Despite its name it serves a manager as well: the component
//! imports only what its code calls.

/// One IaaS node of the service (`paasm:platform/types.node`), as passed to
/// [`Lifecycle::on_nodes_added`] and [`Lifecycle::on_nodes_removing`] and returned by
/// [`crate::controller`].
pub use crate::bindings::paasm::platform::types::Node;

/// The hooks the host calls around the lifecycle it owns. Every method has a default that
/// does nothing and succeeds, so `impl Lifecycle for Component {}` is a valid service.
///
/// An `Err(message)` from a hook aborts the step the host was taking (for `on_startup`, the
/// start) and `message` becomes the reason reported to the caller.
pub trait Lifecycle {
    /// The service is starting: on an agent, when the host starts serving it; on a manager,
    /// during `startup`, before the first nodes are created.
    fn on_startup() -> Result<(), String> {
        Ok(())
    }

    /// The `$VAR` replacements for the configuration of a new agent node with `role` on
    /// `cloud`, e.g. `[("STRING", "helloworld")]`.
    fn agent_context(role: String, cloud: String) -> Vec<(String, String)> {
        let _ = (role, cloud);
        Vec::new()
    }

    /// New nodes have booted and their agents answer.
    fn on_nodes_added(nodes: Vec<Node>) -> Result<(), String> {
        let _ = nodes;
        Ok(())
    }

    /// These nodes are about to be removed.
    fn on_nodes_removing(nodes: Vec<Node>) -> Result<(), String> {
        let _ = nodes;
        Ok(())
    }

    /// The service is shutting down.
    fn on_shutdown() -> Result<(), String> {
        Ok(())
    }
}

/// Lets `paasm_sdk::bindings::export_agent!` export any [`Lifecycle`] type directly.
impl<T: Lifecycle> crate::bindings::exports::paasm::service::lifecycle::Guest for T {
    fn on_startup() -> Result<(), String> {
        <T as Lifecycle>::on_startup()
    }

    fn agent_context(role: String, cloud: String) -> Vec<(String, String)> {
        <T as Lifecycle>::agent_context(role, cloud)
    }

    fn on_nodes_added(nodes: Vec<Node>) -> Result<(), String> {
        <T as Lifecycle>::on_nodes_added(nodes)
    }

    fn on_nodes_removing(nodes: Vec<Node>) -> Result<(), String> {
        <T as Lifecycle>::on_nodes_removing(nodes)
    }

    fn on_shutdown() -> Result<(), String> {
        <T as Lifecycle>::on_shutdown()
    }
}

/// Implements the guest's generated `paasm:service/lifecycle` trait by delegating every hook
/// to the type's [`Lifecycle`] implementation.
///
/// A guest whose world includes `paasm:service/agent@0.1.0` or `paasm:service/manager@0.1.0`
/// gets its own lifecycle `Guest` trait from `wit_bindgen::generate!` (`wit-bindgen` always
/// generates exports), and its own `export!` macro exports it together with the guest's method
/// interfaces. This macro fills that trait in, so the guest writes only the hooks it overrides
/// in `impl Lifecycle`. The guest's `generate!` must map `paasm:platform/types@0.1.0` onto
/// [`crate::bindings`] with `with`, so that its hooks take the SDK's [`Node`].
///
/// `export_lifecycle!(Component)` expects the bindings at the crate root (the usual place for
/// `generate!`); if they live in a module, name it:
/// `export_lifecycle!(Component with_types_in crate::bindings)`.
#[macro_export]
macro_rules! export_lifecycle {
    ($ty:ident) => {
        $crate::export_lifecycle!($ty with_types_in crate);
    };
    ($ty:ident with_types_in $($bindings:tt)*) => {
        impl $($bindings)*::exports::paasm::service::lifecycle::Guest for $ty {
            fn on_startup() -> ::core::result::Result<(), ::std::string::String> {
                <$ty as $crate::Lifecycle>::on_startup()
            }

            fn agent_context(
                role: ::std::string::String,
                cloud: ::std::string::String,
            ) -> ::std::vec::Vec<(::std::string::String, ::std::string::String)> {
                <$ty as $crate::Lifecycle>::agent_context(role, cloud)
            }

            fn on_nodes_added(
                nodes: ::std::vec::Vec<$crate::Node>,
            ) -> ::core::result::Result<(), ::std::string::String> {
                <$ty as $crate::Lifecycle>::on_nodes_added(nodes)
            }

            fn on_nodes_removing(
                nodes: ::std::vec::Vec<$crate::Node>,
            ) -> ::core::result::Result<(), ::std::string::String> {
                <$ty as $crate::Lifecycle>::on_nodes_removing(nodes)
            }

            fn on_shutdown() -> ::core::result::Result<(), ::std::string::String> {
                <$ty as $crate::Lifecycle>::on_shutdown()
            }
        }
    };
}
