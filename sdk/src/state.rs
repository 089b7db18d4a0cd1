//! The persistent key/value store of the service on this node, through `paasm:platform/state`.
//!
//! Every guest call is a transaction: what it writes becomes visible to other calls, and
//! durable, only when the call returns normally. A call that traps, panics or runs out of time
//! or memory writes nothing. This store is the only place a guest may keep anything between
//! calls, since each call may run in a fresh instance.
//!
//! ```no_run
//! use paasm_sdk::state;
//!
//! state::set_string("state", "RUNNING");
//! let running = state::get_string("state").as_deref() == Some("RUNNING");
//! ```

use crate::bindings::paasm::platform::state as host;

/// The bytes stored under `key`, if any.
pub fn get(key: &str) -> Option<Vec<u8>> {
    host::get(key)
}

/// Stores `value` under `key`, replacing any previous value.
pub fn set(key: &str, value: &[u8]) {
    host::set(key, value);
}

/// Removes `key`; removing an absent key is not an error.
pub fn delete(key: &str) {
    host::delete(key);
}

/// Every key that starts with `prefix`, sorted.
pub fn keys(prefix: &str) -> Vec<String> {
    host::keys(prefix)
}

/// The value under `key` as UTF-8 text; `None` when absent or not valid UTF-8.
pub fn get_string(key: &str) -> Option<String> {
    get(key).and_then(|bytes| String::from_utf8(bytes).ok())
}

/// Stores `value` as UTF-8 text under `key`.
pub fn set_string(key: &str, value: &str) {
    set(key, value.as_bytes());
}

/// The value under `key` decoded from JSON; `Ok(None)` when absent.
#[cfg(feature = "json")]
pub fn get_json<T: serde::de::DeserializeOwned>(key: &str) -> Result<Option<T>, serde_json::Error> {
    get(key)
        .map(|bytes| serde_json::from_slice(&bytes))
        .transpose()
}

/// Stores `value` encoded as JSON under `key`.
#[cfg(feature = "json")]
pub fn set_json<T: serde::Serialize + ?Sized>(
    key: &str,
    value: &T,
) -> Result<(), serde_json::Error> {
    set(key, &serde_json::to_vec(value)?);
    Ok(())
}
