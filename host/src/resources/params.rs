//! Parameter collections: the seed's `Parameters`, strings by name.
//!
//! At this layer every value is text, as the seed's hash table holds it; a [`Schema`]
//! checks the text and stores it in canonical form, and the typed accessors
//! ([`Params::as_num`], [`Params::as_bool`], ...) read it back with the same rules.
//!
//! A parameter can be marked *sensitive* (the schema marks every `password`): its value is
//! replaced by `***` in `Debug` output, so a collection can be logged with `{:?}` without
//! leaking secrets. The marks do not take part in equality.
//!
//! [`inherit`] builds a resource's configuration from its own attributes and those of its
//! parents in the hierarchy.
//!
//! [`Schema`]: super::schema::Schema

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::net::{IpAddr, Ipv4Addr};

use super::schema::PropType;
use super::value::{self, InvalidValue};

/// `text` with every non-empty value in `secrets` replaced by `***`: for what an
/// implementation says back (its errors, its log lines, its output), which may quote the
/// values it was given.
pub fn mask_secrets(text: String, secrets: &[String]) -> String {
    secrets
        .iter()
        .filter(|s| !s.is_empty())
        .fold(text, |text, secret| {
            if text.contains(secret.as_str()) {
                text.replace(secret.as_str(), "***")
            } else {
                text
            }
        })
}

/// A parameter collection: values by name, names sorted, some marked sensitive.
#[derive(Clone, Default)]
pub struct Params {
    values: BTreeMap<String, String>,
    sensitive: BTreeSet<String>,
}

impl Params {
    /// An empty collection.
    pub fn new() -> Self {
        Self::default()
    }

    /// The value of `name`.
    pub fn get(&self, name: &str) -> Option<&str> {
        self.values.get(name).map(String::as_str)
    }

    /// Whether `name` has a value.
    pub fn contains(&self, name: &str) -> bool {
        self.values.contains_key(name)
    }

    /// Sets `name` to `value` and returns the previous value. A sensitive mark on `name`
    /// stays.
    pub fn set(&mut self, name: impl Into<String>, value: impl Into<String>) -> Option<String> {
        self.values.insert(name.into(), value.into())
    }

    /// The values of the sensitive parameters.
    pub fn secret_values(&self) -> impl Iterator<Item = &str> {
        self.sensitive
            .iter()
            .filter_map(|name| self.values.get(name).map(String::as_str))
    }

    /// Sets `name` to `value` and marks it sensitive.
    pub fn set_sensitive(&mut self, name: impl Into<String>, value: impl Into<String>) {
        let name = name.into();
        self.sensitive.insert(name.clone());
        self.values.insert(name, value.into());
    }

    /// Sets `name` to `value`, marking it sensitive when `sensitive` is true.
    pub(crate) fn set_marked(&mut self, name: &str, value: String, sensitive: bool) {
        if sensitive {
            self.set_sensitive(name, value);
        } else {
            self.set(name, value);
        }
    }

    /// Marks `name` sensitive (whether or not it has a value yet).
    pub fn mark_sensitive(&mut self, name: impl Into<String>) {
        self.sensitive.insert(name.into());
    }

    /// Whether `name` is marked sensitive.
    pub fn is_sensitive(&self, name: &str) -> bool {
        self.sensitive.contains(name)
    }

    /// Removes `name` (and its mark) and returns its value.
    pub fn remove(&mut self, name: &str) -> Option<String> {
        self.sensitive.remove(name);
        self.values.remove(name)
    }

    /// The names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.values.keys().map(String::as_str)
    }

    /// The `(name, value)` pairs, sorted by name.
    pub fn iter(&self) -> impl Iterator<Item = (&str, &str)> {
        self.values
            .iter()
            .map(|(name, value)| (name.as_str(), value.as_str()))
    }

    /// How many parameters there are.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether there are no parameters.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Sets every parameter of `other` here (the values of `other` win) and takes over its
    /// sensitive marks.
    pub fn overlay(&mut self, other: &Params) {
        for (name, value) in &other.values {
            self.values.insert(name.clone(), value.clone());
        }
        self.sensitive.extend(other.sensitive.iter().cloned());
    }

    /// Reads `name` with the parser of `ty`: `None` when absent.
    fn typed<T>(
        &self,
        name: &str,
        ty: PropType,
        parse: impl Fn(&str) -> Result<T, String>,
    ) -> Result<Option<T>, InvalidValue> {
        let Some(text) = self.get(name) else {
            return Ok(None);
        };
        parse(text).map(Some).map_err(|reason| {
            InvalidValue::new(name, ty, text, value::expected_form(ty, &[]), reason)
        })
    }

    /// `name` as a `num`: `None` when absent, an error when not a signed 64-bit integer.
    pub fn as_num(&self, name: &str) -> Result<Option<i64>, InvalidValue> {
        self.typed(name, PropType::Num, value::parse_num)
    }

    /// `name` as a `unum`: `None` when absent, an error when not an unsigned 64-bit integer.
    pub fn as_unum(&self, name: &str) -> Result<Option<u64>, InvalidValue> {
        self.typed(name, PropType::Unum, value::parse_unum)
    }

    /// `name` as a `bool`: `None` when absent; accepts the same words as the schema.
    pub fn as_bool(&self, name: &str) -> Result<Option<bool>, InvalidValue> {
        self.typed(name, PropType::Bool, value::parse_bool)
    }

    /// `name` as an `ip`: `None` when absent.
    pub fn as_ip(&self, name: &str) -> Result<Option<IpAddr>, InvalidValue> {
        self.typed(name, PropType::Ip, value::parse_ip)
    }

    /// `name` as a `mask`: `None` when absent; a prefix length reads as its netmask.
    pub fn as_mask(&self, name: &str) -> Result<Option<Ipv4Addr>, InvalidValue> {
        self.typed(name, PropType::Mask, value::parse_mask)
    }

    /// `name` as a `mac`: `None` when absent.
    pub fn as_mac(&self, name: &str) -> Result<Option<[u8; 6]>, InvalidValue> {
        self.typed(name, PropType::Mac, value::parse_mac)
    }
}

impl PartialEq for Params {
    fn eq(&self, other: &Self) -> bool {
        self.values == other.values
    }
}

impl Eq for Params {}

impl fmt::Debug for Params {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let mut map = f.debug_map();
        for (name, value) in &self.values {
            if self.sensitive.contains(name) {
                map.entry(name, &format_args!("***"));
            } else {
                map.entry(name, value);
            }
        }
        map.finish()
    }
}

impl<K: Into<String>, V: Into<String>> FromIterator<(K, V)> for Params {
    fn from_iter<I: IntoIterator<Item = (K, V)>>(pairs: I) -> Self {
        let mut params = Params::new();
        params.extend(pairs);
        params
    }
}

impl<K: Into<String>, V: Into<String>> Extend<(K, V)> for Params {
    fn extend<I: IntoIterator<Item = (K, V)>>(&mut self, pairs: I) {
        for (name, value) in pairs {
            self.set(name, value);
        }
    }
}

impl<K: Into<String>, V: Into<String>, const N: usize> From<[(K, V); N]> for Params {
    fn from(pairs: [(K, V); N]) -> Self {
        pairs.into_iter().collect()
    }
}

/// The configuration a resource sees: its own attributes and those of all its parents.
///
/// The seed: a resource "inherits configuration parameters of its parent resource (in the
/// hierarchy). Therefore, resource gets configuration parameters of all its parents in
/// parameters collection." It says nothing of names shared along the chain; here the nearest
/// wins: `own_config` over every parent, and `parent_configs[0]` (the direct parent) over
/// `parent_configs[1]` (the grandparent) and so on up to the root. Sensitive marks are
/// kept. Only configuration is inherited; a parent's instance parameters are not.
pub fn inherit(parent_configs: &[&Params], own_config: &Params) -> Params {
    let mut config = Params::new();
    for parent in parent_configs.iter().rev() {
        config.overlay(parent);
    }
    config.overlay(own_config);
    config
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn get_set_remove_and_names() {
        let mut params = Params::new();
        assert!(params.is_empty());
        assert_eq!(params.set("port", "80"), None);
        assert_eq!(params.set("port", "8080"), Some("80".to_string()));
        params.set("hostname", "example.com");
        assert_eq!(params.get("port"), Some("8080"));
        assert_eq!(params.get("nope"), None);
        assert!(params.contains("hostname"));
        assert_eq!(params.names().collect::<Vec<_>>(), ["hostname", "port"]);
        assert_eq!(params.len(), 2);
        assert_eq!(params.remove("port"), Some("8080".to_string()));
        assert_eq!(params.remove("port"), None);
        assert_eq!(
            params.iter().collect::<Vec<_>>(),
            [("hostname", "example.com")]
        );
    }

    #[test]
    fn sensitive_values_are_hidden_from_debug() {
        let mut params = Params::from([("user", "john")]);
        params.set_sensitive("password", "hunter2");
        let debug = format!("{params:?}");
        assert_eq!(debug, r#"{"password": ***, "user": "john"}"#);
        assert!(params.is_sensitive("password"));
        // Overwriting keeps the mark; removing drops it.
        params.set("password", "hunter3");
        assert!(!format!("{params:?}").contains("hunter3"));
        params.remove("password");
        assert!(!params.is_sensitive("password"));
        assert_eq!(format!("{params:#?}").lines().count(), 3);
    }

    #[test]
    fn equality_ignores_marks() {
        let mut marked = Params::new();
        marked.set_sensitive("password", "x");
        assert_eq!(marked, Params::from([("password", "x")]));
        assert_ne!(marked, Params::from([("password", "y")]));
    }

    #[test]
    fn typed_accessors_parse_with_the_schema_rules() {
        let params = Params::from([
            ("port", "80"),
            ("offset", "-5"),
            ("index", "Yes"),
            ("ip", "2001:DB8::1"),
            ("mask", "/24"),
            ("mac", "00-1A-2B-3C-4D-5E"),
            ("bad", "eighty"),
        ]);
        assert_eq!(params.as_unum("port"), Ok(Some(80)));
        assert_eq!(params.as_num("offset"), Ok(Some(-5)));
        assert_eq!(params.as_bool("index"), Ok(Some(true)));
        assert_eq!(params.as_ip("ip"), Ok(Some("2001:db8::1".parse().unwrap())));
        assert_eq!(
            params.as_mask("mask"),
            Ok(Some(Ipv4Addr::new(255, 255, 255, 0)))
        );
        assert_eq!(
            params.as_mac("mac"),
            Ok(Some([0x00, 0x1a, 0x2b, 0x3c, 0x4d, 0x5e]))
        );
        assert_eq!(params.as_num("absent"), Ok(None));
        let err = params.as_unum("bad").unwrap_err();
        assert_eq!(err.param(), "bad");
        assert_eq!(err.value(), Some("eighty"));
        assert!(params.as_unum("offset").is_err());
        assert!(params.as_bool("port").is_err());
        assert!(params.as_ip("mask").is_err());
    }

    #[test]
    fn inherit_nearest_wins_and_own_wins_over_parents() {
        let root = Params::from([("shell", "/bin/sh"), ("quota", "100"), ("root_only", "r")]);
        let account = Params::from([("quota", "200"), ("owner", "acct"), ("account_only", "a")]);
        let own = Params::from([("owner", "web"), ("logsdir", "/var/log/web")]);
        let config = inherit(&[&account, &root], &own);
        assert_eq!(
            config,
            Params::from([
                ("account_only", "a"),
                ("logsdir", "/var/log/web"),
                ("owner", "web"),
                ("quota", "200"),
                ("root_only", "r"),
                ("shell", "/bin/sh"),
            ])
        );
        assert_eq!(inherit(&[], &own), own);
        assert_eq!(inherit(&[&root], &Params::new()), root);
    }

    #[test]
    fn inherit_keeps_sensitive_marks() {
        let mut parent = Params::new();
        parent.set_sensitive("dbpassword", "s3cret");
        let config = inherit(&[&parent], &Params::from([("x", "1")]));
        assert!(config.is_sensitive("dbpassword"));
        assert!(!format!("{config:?}").contains("s3cret"));
    }

    #[test]
    fn overlay_replaces_and_adds() {
        let mut base = Params::from([("a", "1"), ("b", "2")]);
        base.overlay(&Params::from([("b", "3"), ("c", "4")]));
        assert_eq!(base, Params::from([("a", "1"), ("b", "3"), ("c", "4")]));
    }
}
