//! Resource keys: the seed's `Key`, `NumKey` and `StrKey`, and the allocator of managed
//! physical keys.
//!
//! A *logical* key is the parameter that tells the caller's instances apart (a web host's
//! domain name); a *physical* key is what the implementation needs to address the instance
//! (the host's number in the IIS metabase) and the caller never sees. Both are a [`Key`]:
//! a number or a string.
//!
//! The seed's key algebra (`Val`, `Compare`, `Add`, `Sub`, `Inc`, `Dec`) maps to
//! [`Key::val`], [`Key::compare`], [`Key::add`], [`Key::sub`], [`Key::inc`] and [`Key::dec`],
//! with these decisions:
//!
//! - String keys compare case-insensitively unless the resource is case sensitive (the
//!   seed's `CaseSensitive` attribute, false by default). Case is folded per character with
//!   Unicode lower-casing; [`Key::folded`] gives the same folding for use as a lock or cache
//!   key, so two keys compare equal exactly when their folded forms are equal.
//! - A number and a string are never equal: every number orders before every string. A
//!   resource has one key kind, so this only keeps the order total (sorting a mixed list is
//!   well defined) instead of failing.
//! - Arithmetic is defined for numbers only and is checked: overflowing a signed 64-bit
//!   integer is a [`KeyError::Overflow`], not a wrap. On a string key it is a
//!   [`KeyError::NotNumeric`]: there is no sensible successor of `www.example.com`.
//!
//! [`allocate_physical_key`] implements the seed's managed physical keys.

use std::cmp::Ordering;
use std::collections::BTreeSet;
use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use super::schema::PropType;
use super::value;

/// The kind of a key: the seed's `NumKey` or `StrKey`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum KeyKind {
    /// A signed 64-bit integer.
    Num,
    /// A non-empty string.
    Str,
}

impl KeyKind {
    /// The kind of key a property of type `ty` makes: `num` and `unum` make numeric keys,
    /// every other type makes string keys.
    pub fn for_prop_type(ty: PropType) -> Self {
        match ty {
            PropType::Num | PropType::Unum => KeyKind::Num,
            _ => KeyKind::Str,
        }
    }

    /// The kind's name: `num` or `str`.
    pub fn as_str(self) -> &'static str {
        match self {
            KeyKind::Num => "num",
            KeyKind::Str => "str",
        }
    }
}

impl fmt::Display for KeyKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for KeyKind {
    type Err = KeyError;

    /// Reads `num` or `str`, or the seed's class names `NumKey` and `StrKey`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        match text {
            "num" | "NumKey" => Ok(KeyKind::Num),
            "str" | "StrKey" => Ok(KeyKind::Str),
            _ => Err(KeyError::UnknownKind {
                text: text.to_string(),
            }),
        }
    }
}

/// An error of key parsing, arithmetic or allocation.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum KeyError {
    #[error("unknown key kind {text:?}; expected num or str")]
    UnknownKind { text: String },
    #[error("invalid {kind} key {text:?}: {reason}")]
    Parse {
        kind: KeyKind,
        text: String,
        reason: String,
    },
    #[error("{op} is not defined for string keys")]
    NotNumeric { op: &'static str },
    #[error("key {key} {sign} {amount} overflows a 64-bit signed integer")]
    Overflow { key: i64, sign: char, amount: i64 },
    #[error("managed physical keys are numeric; found string key {key:?}")]
    StringPhysicalKey { key: String },
    #[error("every positive physical key is in use")]
    Exhausted,
}

/// A logical or physical key.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Key {
    /// The seed's `NumKey`.
    Num(i64),
    /// The seed's `StrKey`.
    Str(String),
}

impl Key {
    /// Reads a key of `kind` from its text (a parameter value): a decimal integer (as a
    /// `num` parameter, no whitespace) or any non-empty string.
    pub fn parse(kind: KeyKind, text: &str) -> Result<Self, KeyError> {
        let error = |reason: String| KeyError::Parse {
            kind,
            text: text.to_string(),
            reason,
        };
        match kind {
            KeyKind::Num => value::parse_num(text).map(Key::Num).map_err(error),
            KeyKind::Str if text.is_empty() => Err(error("empty".to_string())),
            KeyKind::Str => Ok(Key::Str(text.to_string())),
        }
    }

    /// The key's kind.
    pub fn kind(&self) -> KeyKind {
        match self {
            Key::Num(_) => KeyKind::Num,
            Key::Str(_) => KeyKind::Str,
        }
    }

    /// The value as the text of a parameter (the seed's `Val`).
    pub fn val(&self) -> String {
        self.to_string()
    }

    /// The number, for a numeric key.
    pub fn as_num(&self) -> Option<i64> {
        match self {
            Key::Num(n) => Some(*n),
            Key::Str(_) => None,
        }
    }

    /// The string, for a string key.
    pub fn as_str(&self) -> Option<&str> {
        match self {
            Key::Num(_) => None,
            Key::Str(s) => Some(s),
        }
    }

    /// Orders two keys (the seed's `Compare`): numbers numerically, strings by character,
    /// case-insensitively unless `case_sensitive`; every number before every string.
    pub fn compare(&self, other: &Key, case_sensitive: bool) -> Ordering {
        match (self, other) {
            (Key::Num(a), Key::Num(b)) => a.cmp(b),
            (Key::Str(a), Key::Str(b)) if case_sensitive => a.cmp(b),
            (Key::Str(a), Key::Str(b)) => fold(a).cmp(fold(b)),
            (Key::Num(_), Key::Str(_)) => Ordering::Less,
            (Key::Str(_), Key::Num(_)) => Ordering::Greater,
        }
    }

    /// Whether two keys are the same key under the resource's case sensitivity.
    pub fn same(&self, other: &Key, case_sensitive: bool) -> bool {
        self.compare(other, case_sensitive) == Ordering::Equal
    }

    /// The key as it identifies an instance in locks and caches: unchanged when
    /// `case_sensitive` or numeric, else folded to lower case the way [`Key::compare`] folds.
    pub fn folded(&self, case_sensitive: bool) -> Key {
        match self {
            Key::Str(s) if !case_sensitive => Key::Str(fold(s).collect()),
            other => other.clone(),
        }
    }

    /// The key plus `amount` (the seed's `Add`), for numeric keys.
    pub fn add(&self, amount: i64) -> Result<Key, KeyError> {
        let key = self.number("add")?;
        key.checked_add(amount)
            .map(Key::Num)
            .ok_or(KeyError::Overflow {
                key,
                sign: '+',
                amount,
            })
    }

    /// The key minus `amount` (the seed's `Sub`), for numeric keys.
    pub fn sub(&self, amount: i64) -> Result<Key, KeyError> {
        let key = self.number("sub")?;
        key.checked_sub(amount)
            .map(Key::Num)
            .ok_or(KeyError::Overflow {
                key,
                sign: '-',
                amount,
            })
    }

    /// The next key (the seed's `Inc`), for numeric keys.
    pub fn inc(&self) -> Result<Key, KeyError> {
        self.number("inc")?;
        self.add(1)
    }

    /// The previous key (the seed's `Dec`), for numeric keys.
    pub fn dec(&self) -> Result<Key, KeyError> {
        self.number("dec")?;
        self.sub(1)
    }

    /// The number of a numeric key, or the error for operation `op` on a string key.
    fn number(&self, op: &'static str) -> Result<i64, KeyError> {
        self.as_num().ok_or(KeyError::NotNumeric { op })
    }
}

/// The characters of `s` folded to lower case, one character at a time.
fn fold(s: &str) -> impl Iterator<Item = char> + '_ {
    s.chars().flat_map(char::to_lowercase)
}

impl fmt::Display for Key {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Key::Num(n) => write!(f, "{n}"),
            Key::Str(s) => f.write_str(s),
        }
    }
}

/// The next physical key for a resource with managed physical keys (the seed's
/// `ManagedPKey`), given the keys of the instances that exist (from the resource's list).
///
/// Managed keys are positive numbers. The new key is one more than the largest in use, or
/// 1 when none is in use (or none is positive): keys only grow, so a key freed by a
/// deletion is not handed out again while a larger one exists, and stale references to a
/// deleted instance (in caches, logs, the caller's records) cannot reach a new one. Only
/// when the largest key is `i64::MAX` is the smallest unused positive key taken instead.
///
/// A string key in `in_use` is an error: a resource whose keys are strings cannot have its
/// physical keys managed.
pub fn allocate_physical_key<'a>(
    in_use: impl IntoIterator<Item = &'a Key>,
) -> Result<Key, KeyError> {
    let mut used = BTreeSet::new();
    for key in in_use {
        match key {
            Key::Num(n) if *n >= 1 => {
                used.insert(*n);
            }
            Key::Num(_) => {}
            Key::Str(s) => return Err(KeyError::StringPhysicalKey { key: s.clone() }),
        }
    }
    let Some(&largest) = used.last() else {
        return Ok(Key::Num(1));
    };
    if let Some(next) = largest.checked_add(1) {
        return Ok(Key::Num(next));
    }
    let mut candidate: i64 = 1;
    for &n in &used {
        if n != candidate {
            return Ok(Key::Num(candidate));
        }
        candidate = candidate.checked_add(1).ok_or(KeyError::Exhausted)?;
    }
    Err(KeyError::Exhausted)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn s(text: &str) -> Key {
        Key::Str(text.to_string())
    }

    #[test]
    fn parse_reads_numbers_and_strings() {
        assert_eq!(Key::parse(KeyKind::Num, "42"), Ok(Key::Num(42)));
        assert_eq!(Key::parse(KeyKind::Num, "-7"), Ok(Key::Num(-7)));
        assert_eq!(Key::parse(KeyKind::Num, "+007"), Ok(Key::Num(7)));
        assert_eq!(
            Key::parse(KeyKind::Str, "www.example.com"),
            Ok(s("www.example.com"))
        );
        assert_eq!(Key::parse(KeyKind::Str, " spaced "), Ok(s(" spaced ")));
        assert_eq!(Key::parse(KeyKind::Str, "42"), Ok(s("42")));
    }

    #[test]
    fn parse_refuses_malformed_keys() {
        for text in ["", " 1", "1.5", "abc", "9223372036854775808"] {
            let err = Key::parse(KeyKind::Num, text).unwrap_err();
            assert!(
                matches!(
                    err,
                    KeyError::Parse {
                        kind: KeyKind::Num,
                        ..
                    }
                ),
                "{text:?}"
            );
        }
        assert_eq!(
            Key::parse(KeyKind::Str, "").unwrap_err().to_string(),
            "invalid str key \"\": empty"
        );
        assert_eq!(
            Key::parse(KeyKind::Num, "x").unwrap_err().to_string(),
            "invalid num key \"x\": not a decimal integer"
        );
    }

    #[test]
    fn kind_names_and_prop_types() {
        assert_eq!("num".parse::<KeyKind>(), Ok(KeyKind::Num));
        assert_eq!("StrKey".parse::<KeyKind>(), Ok(KeyKind::Str));
        assert_eq!("NumKey".parse::<KeyKind>(), Ok(KeyKind::Num));
        assert!("Num".parse::<KeyKind>().is_err());
        assert_eq!(KeyKind::Num.to_string(), "num");
        assert_eq!(KeyKind::for_prop_type(PropType::Unum), KeyKind::Num);
        assert_eq!(KeyKind::for_prop_type(PropType::Num), KeyKind::Num);
        assert_eq!(KeyKind::for_prop_type(PropType::Domain), KeyKind::Str);
        assert_eq!(Key::Num(1).kind(), KeyKind::Num);
        assert_eq!(s("a").kind(), KeyKind::Str);
    }

    #[test]
    fn val_display_and_accessors() {
        assert_eq!(Key::Num(-3).val(), "-3");
        assert_eq!(s("Example").val(), "Example");
        assert_eq!(Key::Num(5).to_string(), "5");
        assert_eq!(Key::Num(5).as_num(), Some(5));
        assert_eq!(Key::Num(5).as_str(), None);
        assert_eq!(s("x").as_str(), Some("x"));
        assert_eq!(s("x").as_num(), None);
        // A key's text reads back as the same key.
        for key in [Key::Num(i64::MIN), Key::Num(0), s("Www.Example.com")] {
            assert_eq!(Key::parse(key.kind(), &key.val()), Ok(key));
        }
    }

    #[test]
    fn compare_numbers_numerically() {
        assert_eq!(Key::Num(2).compare(&Key::Num(10), false), Ordering::Less);
        assert_eq!(Key::Num(-1).compare(&Key::Num(-1), true), Ordering::Equal);
        assert_eq!(
            Key::Num(i64::MAX).compare(&Key::Num(i64::MIN), false),
            Ordering::Greater
        );
    }

    #[test]
    fn compare_strings_by_case_sensitivity() {
        let upper = s("WWW.Example.com");
        let lower = s("www.example.com");
        assert_eq!(upper.compare(&lower, false), Ordering::Equal);
        assert!(upper.same(&lower, false));
        assert_ne!(upper.compare(&lower, true), Ordering::Equal);
        assert!(!upper.same(&lower, true));
        assert_eq!(s("apple").compare(&s("Banana"), false), Ordering::Less);
        assert_eq!(s("apple").compare(&s("Banana"), true), Ordering::Greater);
        assert_eq!(s("ÄRGER").compare(&s("ärger"), false), Ordering::Equal);
        assert_eq!(s("a").compare(&s("ab"), false), Ordering::Less);
    }

    #[test]
    fn numbers_order_before_strings() {
        assert_eq!(Key::Num(i64::MAX).compare(&s(""), false), Ordering::Less);
        assert_eq!(s("1").compare(&Key::Num(1), true), Ordering::Greater);
        assert!(!Key::Num(1).same(&s("1"), false));
        let mut keys = vec![s("b"), Key::Num(3), s("A"), Key::Num(-1)];
        keys.sort_by(|a, b| a.compare(b, false));
        assert_eq!(keys, [Key::Num(-1), Key::Num(3), s("A"), s("b")]);
    }

    #[test]
    fn folded_agrees_with_compare() {
        assert_eq!(s("WWW.Example.COM").folded(false), s("www.example.com"));
        assert_eq!(s("WWW.Example.COM").folded(true), s("WWW.Example.COM"));
        assert_eq!(Key::Num(7).folded(false), Key::Num(7));
        // The final sigma folds per character, as compare does.
        let a = s("ΟΔΟΣ");
        let b = s("οδοσ");
        assert!(a.same(&b, false));
        assert_eq!(a.folded(false), b.folded(false));
    }

    #[test]
    fn arithmetic_on_numbers() {
        assert_eq!(Key::Num(1).inc(), Ok(Key::Num(2)));
        assert_eq!(Key::Num(1).dec(), Ok(Key::Num(0)));
        assert_eq!(Key::Num(10).add(-15), Ok(Key::Num(-5)));
        assert_eq!(Key::Num(10).sub(15), Ok(Key::Num(-5)));
        assert_eq!(Key::Num(i64::MAX - 1).inc(), Ok(Key::Num(i64::MAX)));
        assert_eq!(Key::Num(i64::MIN + 1).dec(), Ok(Key::Num(i64::MIN)));
        assert_eq!(Key::Num(0).sub(i64::MAX), Ok(Key::Num(-i64::MAX)));
    }

    #[test]
    fn arithmetic_overflow_is_an_error() {
        assert_eq!(
            Key::Num(i64::MAX).inc(),
            Err(KeyError::Overflow {
                key: i64::MAX,
                sign: '+',
                amount: 1
            })
        );
        assert_eq!(
            Key::Num(i64::MAX).inc().unwrap_err().to_string(),
            "key 9223372036854775807 + 1 overflows a 64-bit signed integer"
        );
        assert!(matches!(
            Key::Num(i64::MIN).dec(),
            Err(KeyError::Overflow { sign: '-', .. })
        ));
        assert!(Key::Num(1).add(i64::MAX).is_err());
        assert!(Key::Num(-2).sub(i64::MAX).is_err());
        assert!(Key::Num(0).sub(i64::MIN).is_err());
        assert!(Key::Num(-1).sub(i64::MIN).is_ok());
        assert!(Key::Num(i64::MIN).add(i64::MIN).is_err());
    }

    #[test]
    fn arithmetic_on_strings_is_refused() {
        let key = s("www.example.com");
        assert_eq!(key.inc(), Err(KeyError::NotNumeric { op: "inc" }));
        assert_eq!(key.dec(), Err(KeyError::NotNumeric { op: "dec" }));
        assert_eq!(key.add(1), Err(KeyError::NotNumeric { op: "add" }));
        assert_eq!(key.sub(1), Err(KeyError::NotNumeric { op: "sub" }));
        assert_eq!(
            key.inc().unwrap_err().to_string(),
            "inc is not defined for string keys"
        );
    }

    #[test]
    fn serde_form_is_a_tagged_variant() {
        assert_eq!(serde_json::to_string(&Key::Num(5)).unwrap(), r#"{"num":5}"#);
        assert_eq!(serde_json::to_string(&s("a")).unwrap(), r#"{"str":"a"}"#);
        assert_eq!(
            serde_json::from_str::<Key>(r#"{"num":-5}"#).unwrap(),
            Key::Num(-5)
        );
        assert_eq!(
            serde_json::from_str::<Key>(r#"{"str":"x"}"#).unwrap(),
            s("x")
        );
        assert!(serde_json::from_str::<Key>(r#"{"num":"5"}"#).is_err());
        assert_eq!(serde_json::to_string(&KeyKind::Str).unwrap(), r#""str""#);
    }

    #[test]
    fn allocation_starts_at_one() {
        assert_eq!(allocate_physical_key(&[]), Ok(Key::Num(1)));
        assert_eq!(
            allocate_physical_key(&[Key::Num(0), Key::Num(-4)]),
            Ok(Key::Num(1))
        );
    }

    #[test]
    fn allocation_takes_one_more_than_the_largest() {
        let in_use = [Key::Num(3), Key::Num(1), Key::Num(7)];
        assert_eq!(allocate_physical_key(&in_use), Ok(Key::Num(8)));
        // Gaps left by deletions are not reused while a larger key exists.
        assert_eq!(allocate_physical_key(&[Key::Num(5)]), Ok(Key::Num(6)));
        // Duplicates in the list do not matter.
        assert_eq!(
            allocate_physical_key(&[Key::Num(2), Key::Num(2)]),
            Ok(Key::Num(3))
        );
    }

    #[test]
    fn allocation_falls_back_to_the_smallest_gap_at_the_top() {
        let in_use = [Key::Num(1), Key::Num(2), Key::Num(4), Key::Num(i64::MAX)];
        assert_eq!(allocate_physical_key(&in_use), Ok(Key::Num(3)));
        let in_use = [Key::Num(2), Key::Num(i64::MAX)];
        assert_eq!(allocate_physical_key(&in_use), Ok(Key::Num(1)));
    }

    #[test]
    fn allocation_refuses_string_keys() {
        let in_use = [Key::Num(1), s("site")];
        assert_eq!(
            allocate_physical_key(&in_use),
            Err(KeyError::StringPhysicalKey {
                key: "site".to_string()
            })
        );
    }
}
