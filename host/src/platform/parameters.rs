//! `paasm:platform/parameters`: the parameter collection of one resource instance, a WIT
//! `resource` the host implements (H-Sphere's `Parameters`).
//!
//! [`Parameters`] is plain data: the values by name, the logical and physical keys, the
//! parent's collection and the kinds of the values (for `get-value`). The engine puts a
//! collection in the store's table before a provider call and takes it back afterwards, with
//! whatever the provider set.

use std::collections::BTreeMap;

use wasmtime::component::Resource;

use super::PlatformCtx;
use crate::engine::platform_bindings::parameters::{Host, HostParameters, Value};
use crate::engine::platform_bindings::types::Key as WitKey;

/// A resource key: numeric or string (H-Sphere's `NumKey` and `StrKey`).
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum ParamKey {
    Num(i64),
    Str(String),
}

impl From<ParamKey> for WitKey {
    fn from(k: ParamKey) -> Self {
        match k {
            ParamKey::Num(n) => WitKey::Num(n),
            ParamKey::Str(s) => WitKey::Str(s),
        }
    }
}

impl From<WitKey> for ParamKey {
    fn from(k: WitKey) -> Self {
        match k {
            WitKey::Num(n) => ParamKey::Num(n),
            WitKey::Str(s) => ParamKey::Str(s),
        }
    }
}

/// How `get-value` types a parameter.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    Text,
    Num,
    Unum,
    Bool,
}

/// One instance's parameters, as a provider sees them.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct Parameters {
    pub values: BTreeMap<String, String>,
    /// The kinds of typed values; a name not listed is text.
    pub kinds: BTreeMap<String, ValueKind>,
    pub lkey: Option<ParamKey>,
    pub pkey: Option<ParamKey>,
    /// The parent instance's collection; none for a root resource.
    pub parent: Option<Box<Parameters>>,
    /// The values of the sensitive parameters (passwords): masked in whatever the provider
    /// logs or prints during the call.
    pub secrets: Vec<String>,
}

impl Parameters {
    /// The value of `name` typed by its kind; a value that does not parse as its kind is
    /// given as text (the host validated it, so this only happens after a provider `set`).
    pub fn typed(&self, name: &str) -> Option<Value> {
        let text = self.values.get(name)?;
        let kind = self.kinds.get(name).copied().unwrap_or(ValueKind::Text);
        Some(match kind {
            ValueKind::Num => text
                .parse()
                .map(Value::Num)
                .unwrap_or(Value::Text(text.clone())),
            ValueKind::Unum => text
                .parse()
                .map(Value::Unum)
                .unwrap_or(Value::Text(text.clone())),
            ValueKind::Bool => match text.to_ascii_lowercase().as_str() {
                "true" => Value::Boolean(true),
                "false" => Value::Boolean(false),
                _ => Value::Text(text.clone()),
            },
            ValueKind::Text => Value::Text(text.clone()),
        })
    }
}

impl PlatformCtx {
    /// Puts a collection in this store's table, for a provider call.
    pub fn push_parameters(
        &mut self,
        params: Parameters,
    ) -> wasmtime::Result<Resource<Parameters>> {
        let mut collection = Some(&params);
        while let Some(p) = collection {
            self.secrets.extend(p.secrets.iter().cloned());
            collection = p.parent.as_deref();
        }
        Ok(self.table.push(params)?)
    }

    /// Takes a collection back out of this store's table after a provider call.
    pub fn take_parameters(
        &mut self,
        handle: Resource<Parameters>,
    ) -> wasmtime::Result<Parameters> {
        Ok(self.table.delete(handle)?)
    }

    fn params(&mut self, handle: &Resource<Parameters>) -> wasmtime::Result<&mut Parameters> {
        Ok(self.table.get_mut(handle)?)
    }
}

impl Host for PlatformCtx {}

impl HostParameters for PlatformCtx {
    fn get(&mut self, p: Resource<Parameters>, name: String) -> wasmtime::Result<Option<String>> {
        Ok(self.params(&p)?.values.get(&name).cloned())
    }

    fn get_value(
        &mut self,
        p: Resource<Parameters>,
        name: String,
    ) -> wasmtime::Result<Option<Value>> {
        Ok(self.params(&p)?.typed(&name))
    }

    fn set(
        &mut self,
        p: Resource<Parameters>,
        name: String,
        value: String,
    ) -> wasmtime::Result<()> {
        self.params(&p)?.values.insert(name, value);
        Ok(())
    }

    fn names(&mut self, p: Resource<Parameters>) -> wasmtime::Result<Vec<String>> {
        Ok(self.params(&p)?.values.keys().cloned().collect())
    }

    fn remove(&mut self, p: Resource<Parameters>, name: String) -> wasmtime::Result<()> {
        self.params(&p)?.values.remove(&name);
        Ok(())
    }

    fn lkey(&mut self, p: Resource<Parameters>) -> wasmtime::Result<WitKey> {
        let params = self.params(&p)?;
        Ok(params
            .lkey
            .clone()
            .unwrap_or_else(|| ParamKey::Str(String::new()))
            .into())
    }

    fn pkey(&mut self, p: Resource<Parameters>) -> wasmtime::Result<Option<WitKey>> {
        Ok(self.params(&p)?.pkey.clone().map(WitKey::from))
    }

    fn set_pkey(&mut self, p: Resource<Parameters>, key: WitKey) -> wasmtime::Result<()> {
        self.params(&p)?.pkey = Some(key.into());
        Ok(())
    }

    fn parent(
        &mut self,
        p: Resource<Parameters>,
    ) -> wasmtime::Result<Option<Resource<Parameters>>> {
        let parent = self.params(&p)?.parent.clone();
        match parent {
            Some(parent) => Ok(Some(self.table.push(*parent)?)),
            None => Ok(None),
        }
    }

    fn drop(&mut self, p: Resource<Parameters>) -> wasmtime::Result<()> {
        // The engine takes the call's own collections back itself; a guest dropping a handle
        // it owns (a parent's) frees it here.
        if self.table.get(&p).is_ok() {
            let _ = self.table.delete(p);
        }
        Ok(())
    }
}
