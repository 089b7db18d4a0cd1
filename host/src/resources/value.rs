//! Validation and normalisation of one parameter value by property type.
//!
//! Every value arrives as text. [`check_value`] accepts it or says why not, and returns the
//! form that is stored (the canonical form), so that equal values compare equal in the cache
//! and in diffs:
//!
//! | type | accepted | stored |
//! |---|---|---|
//! | `str` | any text, including the empty string | as given |
//! | `num` | a signed 64-bit decimal integer; an optional `+`/`-` sign and leading zeros are accepted, whitespace is not | canonical decimal (`+007` → `7`) |
//! | `unum` | an unsigned 64-bit decimal integer, same rules, no `-` | canonical decimal |
//! | `bool` | `true`/`false`, `yes`/`no`, `on`/`off`, `1`/`0`, in any case (the set the seed's INI configuration files accept) | `true` or `false` |
//! | `select` | the name of one of the choices, exactly (case-sensitive) | the choice's value |
//! | `path` | a non-empty file system path, absolute or relative, `/` or `\` separated; no NUL or other control character, no leading or trailing whitespace; `..` is allowed | as given |
//! | `password` | any non-empty text | as given; never shown in an error |
//! | `ip` | an IPv4 or IPv6 address as the standard library parses it: no leading zeros in IPv4 octets, no brackets, no zone index (`%eth0`) | canonical (`2001:DB8:0::1` → `2001:db8::1`) |
//! | `domain` | an RFC 1123 host name: ASCII labels of 1 to 63 letters, digits and hyphens, not starting or ending with a hyphen, at most 253 characters; single-label names (`localhost`) and one trailing dot are accepted; the last label may not be all digits (so an IP address is not a domain); internationalised names only in their `xn--` form | lower case, without the trailing dot |
//! | `url` | an absolute URL `scheme://host[:port][/path][?query][#fragment]` (RFC 3986 characters, `%XX` escapes, optional `user@`); the host is a `domain`, an IPv4 address or a bracketed IPv6 address; URLs without an authority (`mailto:`) are refused | as given |
//! | `mail` | a mailbox `local@domain`: a dot-atom local part of at most 64 characters (no quoted strings, no comments) and a `domain` host (no address literals), at most 254 characters in all | the domain part in lower case |
//! | `mask` | an IPv4 netmask in dotted form with contiguous one bits (`255.255.255.0`), or a prefix length `/0`..`/32` (the `/` may be left out); IPv6 has no netmasks and is refused | dotted (`/24` → `255.255.255.0`) |
//! | `mac` | six two-digit hexadecimal octets separated by `:` or by `-` (not both) | lower case, `:` separated |
//!
//! An [`InvalidValue`] names the parameter, the expected form and, except for passwords, the
//! offending value (shortened when long, escaped so that control characters are visible).

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};
use std::num::IntErrorKind;

use super::schema::{Choice, PropType};

/// How many characters of an offending value an error shows before shortening it.
const MAX_SHOWN_CHARS: usize = 64;

/// The longest host name RFC 1123 allows, without the trailing dot.
const MAX_DOMAIN_LEN: usize = 253;

/// The longest label of a host name.
const MAX_LABEL_LEN: usize = 63;

/// The longest local part of a mailbox (RFC 5321).
const MAX_LOCAL_PART_LEN: usize = 64;

/// The longest mailbox (RFC 5321 path limit less the angle brackets).
const MAX_MAILBOX_LEN: usize = 254;

/// A value that does not have the form its property's type requires.
///
/// The value of a `password` parameter is never kept, so neither `Display` nor `Debug` can
/// show it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct InvalidValue {
    param: String,
    ty: PropType,
    value: Option<String>,
    expected: String,
    reason: String,
}

impl InvalidValue {
    /// Builds the error for `value` of parameter `param`, dropping the value when `ty` is
    /// `password` and shortening it when long.
    pub fn new(
        param: impl Into<String>,
        ty: PropType,
        value: &str,
        expected: impl Into<String>,
        reason: impl Into<String>,
    ) -> Self {
        let value = (!ty.is_sensitive()).then(|| shorten(value));
        Self {
            param: param.into(),
            ty,
            value,
            expected: expected.into(),
            reason: reason.into(),
        }
    }

    /// The name of the parameter.
    pub fn param(&self) -> &str {
        &self.param
    }

    /// The type the value was checked against.
    pub fn ty(&self) -> PropType {
        self.ty
    }

    /// The offending value (shortened when long), or `None` for a password.
    pub fn value(&self) -> Option<&str> {
        self.value.as_deref()
    }

    /// The expected form, as a phrase: `an unsigned 64-bit integer`.
    pub fn expected(&self) -> &str {
        &self.expected
    }

    /// What is wrong with the value: `out of range`.
    pub fn reason(&self) -> &str {
        &self.reason
    }
}

impl fmt::Display for InvalidValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.value {
            Some(value) => write!(f, "invalid value {value:?} for parameter {:?}", self.param)?,
            None => write!(f, "invalid value for parameter {:?}", self.param)?,
        }
        write!(f, ": {} (expected {})", self.reason, self.expected)
    }
}

/// Shortens `value` to [`MAX_SHOWN_CHARS`] characters for an error message.
fn shorten(value: &str) -> String {
    match value.char_indices().nth(MAX_SHOWN_CHARS) {
        Some((end, _)) => format!("{}...", &value[..end]),
        None => value.to_string(),
    }
}

/// The expected form of a value of type `ty`, as a phrase for error messages.
///
/// For `select` the phrase lists the choice names.
pub fn expected_form(ty: PropType, choices: &[Choice]) -> String {
    let phrase = match ty {
        PropType::Str => "any text",
        PropType::Num => "a signed 64-bit integer",
        PropType::Unum => "an unsigned 64-bit integer",
        PropType::Bool => "true or false (yes/no, on/off and 1/0 are accepted too)",
        PropType::Select => {
            let names: Vec<&str> = choices.iter().map(|choice| choice.name.as_str()).collect();
            return format!("one of: {}", names.join(", "));
        }
        PropType::Path => "a file system path without control characters or surrounding spaces",
        PropType::Password => "a non-empty password",
        PropType::Ip => "an IPv4 or IPv6 address such as 192.0.2.1 or 2001:db8::1",
        PropType::Domain => "a host name such as www.example.com",
        PropType::Url => "an absolute URL such as https://www.example.com/path",
        PropType::Mail => "a mailbox such as user@example.com",
        PropType::Mask => "an IPv4 netmask such as 255.255.255.0 or a prefix length such as /24",
        PropType::Mac => "a MAC address such as 00:1a:2b:3c:4d:5e",
    };
    phrase.to_string()
}

/// Checks `value` of parameter `param` against type `ty` (and `choices`, for `select`) and
/// returns the form to store.
pub fn check_value(
    param: &str,
    ty: PropType,
    choices: &[Choice],
    value: &str,
) -> Result<String, InvalidValue> {
    canonical(ty, choices, value)
        .map_err(|reason| InvalidValue::new(param, ty, value, expected_form(ty, choices), reason))
}

/// The canonical form of `value`, or why it is not a value of type `ty`.
fn canonical(ty: PropType, choices: &[Choice], value: &str) -> Result<String, String> {
    match ty {
        PropType::Str => Ok(value.to_string()),
        PropType::Num => parse_num(value).map(|n| n.to_string()),
        PropType::Unum => parse_unum(value).map(|n| n.to_string()),
        PropType::Bool => parse_bool(value).map(|b| b.to_string()),
        PropType::Select => choices
            .iter()
            .find(|choice| choice.name == value)
            .map(|choice| choice.value.clone())
            .ok_or_else(|| {
                if value.is_empty() {
                    "empty".to_string()
                } else {
                    "not one of the choices".to_string()
                }
            }),
        PropType::Path => check_path(value).map(|()| value.to_string()),
        PropType::Password => {
            if value.is_empty() {
                Err("empty".to_string())
            } else {
                Ok(value.to_string())
            }
        }
        PropType::Ip => parse_ip(value).map(|ip| ip.to_string()),
        PropType::Domain => parse_domain(value),
        PropType::Url => check_url(value).map(|()| value.to_string()),
        PropType::Mail => parse_mail(value),
        PropType::Mask => parse_mask(value).map(|mask| mask.to_string()),
        PropType::Mac => parse_mac(value).map(|octets| format_mac(&octets)),
    }
}

/// Parses a `num` value.
pub(crate) fn parse_num(value: &str) -> Result<i64, String> {
    value.parse::<i64>().map_err(|err| match err.kind() {
        IntErrorKind::Empty => "empty".to_string(),
        IntErrorKind::PosOverflow | IntErrorKind::NegOverflow => {
            format!("out of range ({} to {})", i64::MIN, i64::MAX)
        }
        _ => "not a decimal integer".to_string(),
    })
}

/// Parses a `unum` value.
pub(crate) fn parse_unum(value: &str) -> Result<u64, String> {
    if value.starts_with('-') && value.len() > 1 {
        return Err("negative".to_string());
    }
    value.parse::<u64>().map_err(|err| match err.kind() {
        IntErrorKind::Empty => "empty".to_string(),
        IntErrorKind::PosOverflow => format!("out of range (0 to {})", u64::MAX),
        _ => "not a decimal integer".to_string(),
    })
}

/// Parses a `bool` value: `true`/`yes`/`on`/`1` or `false`/`no`/`off`/`0`, in any case.
pub(crate) fn parse_bool(value: &str) -> Result<bool, String> {
    const TRUE: [&str; 4] = ["true", "yes", "on", "1"];
    const FALSE: [&str; 4] = ["false", "no", "off", "0"];
    if TRUE.iter().any(|word| value.eq_ignore_ascii_case(word)) {
        Ok(true)
    } else if FALSE.iter().any(|word| value.eq_ignore_ascii_case(word)) {
        Ok(false)
    } else if value.is_empty() {
        Err("empty".to_string())
    } else {
        Err("not a boolean".to_string())
    }
}

/// Checks a `path` value.
fn check_path(value: &str) -> Result<(), String> {
    if value.is_empty() {
        Err("empty".to_string())
    } else if value.contains('\0') {
        Err("contains a NUL character".to_string())
    } else if value.chars().any(char::is_control) {
        Err("contains a control character".to_string())
    } else if value.trim() != value {
        Err("has leading or trailing whitespace".to_string())
    } else {
        Ok(())
    }
}

/// Parses an `ip` value.
pub(crate) fn parse_ip(value: &str) -> Result<IpAddr, String> {
    if value.is_empty() {
        return Err("empty".to_string());
    }
    value.parse::<IpAddr>().map_err(|_| {
        if value.contains('%') {
            "zone indices are not accepted".to_string()
        } else if value.starts_with('[') {
            "brackets are not accepted".to_string()
        } else {
            "not an IPv4 or IPv6 address".to_string()
        }
    })
}

/// Parses a `domain` value and returns it in lower case without a trailing dot.
pub(crate) fn parse_domain(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("empty".to_string());
    }
    if !value.is_ascii() {
        return Err(
            "contains non-ASCII characters (write internationalised names in their xn-- form)"
                .to_string(),
        );
    }
    let name = value.strip_suffix('.').unwrap_or(value);
    if name.is_empty() {
        return Err("has no labels".to_string());
    }
    if name.len() > MAX_DOMAIN_LEN {
        return Err(format!("longer than {MAX_DOMAIN_LEN} characters"));
    }
    let mut last_label = "";
    for label in name.split('.') {
        if label.is_empty() {
            return Err("has an empty label".to_string());
        }
        if label.len() > MAX_LABEL_LEN {
            return Err(format!("a label is longer than {MAX_LABEL_LEN} characters"));
        }
        if let Some(bad) = label
            .chars()
            .find(|c| !c.is_ascii_alphanumeric() && *c != '-')
        {
            return Err(format!(
                "contains {bad:?}; labels take only letters, digits and hyphens"
            ));
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err(format!("label {label:?} starts or ends with a hyphen"));
        }
        last_label = label;
    }
    if last_label.bytes().all(|b| b.is_ascii_digit()) {
        return Err(
            "the last label is all digits (an IP address is not a domain name)".to_string(),
        );
    }
    Ok(name.to_ascii_lowercase())
}

/// Whether `c` is an RFC 3986 unreserved character.
fn is_unreserved(c: char) -> bool {
    c.is_ascii_alphanumeric() || matches!(c, '-' | '.' | '_' | '~')
}

/// Whether `c` is an RFC 3986 sub-delimiter.
fn is_sub_delim(c: char) -> bool {
    matches!(
        c,
        '!' | '$' | '&' | '\'' | '(' | ')' | '*' | '+' | ',' | ';' | '='
    )
}

/// Checks that `text` is made of characters allowed by `allowed` and valid `%XX` escapes.
fn check_url_chars(text: &str, part: &str, allowed: impl Fn(char) -> bool) -> Result<(), String> {
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c == '%' {
            let escape: String = chars.by_ref().take(2).collect();
            if escape.len() != 2 || !escape.chars().all(|h| h.is_ascii_hexdigit()) {
                return Err(format!("the {part} has an invalid % escape"));
            }
        } else if !allowed(c) {
            return Err(format!("the {part} contains {c:?}"));
        }
    }
    Ok(())
}

/// Checks a `url` value.
fn check_url(value: &str) -> Result<(), String> {
    if value.is_empty() {
        return Err("empty".to_string());
    }
    if value.chars().any(|c| c.is_whitespace() || c.is_control()) {
        return Err("contains whitespace or control characters".to_string());
    }
    if !value.is_ascii() {
        return Err("contains non-ASCII characters (percent-encode them)".to_string());
    }
    let Some((scheme, rest)) = value.split_once("://") else {
        return Err("not an absolute URL with scheme:// and a host".to_string());
    };
    let mut scheme_chars = scheme.chars();
    let scheme_ok = scheme_chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && scheme_chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'));
    if !scheme_ok {
        return Err(format!("invalid scheme {scheme:?}"));
    }
    let authority_end = rest.find(['/', '?', '#']).unwrap_or(rest.len());
    let (authority, tail) = rest.split_at(authority_end);
    let host_port = match authority.rsplit_once('@') {
        Some((userinfo, host_port)) => {
            check_url_chars(userinfo, "user information", |c| {
                is_unreserved(c) || is_sub_delim(c) || c == ':'
            })?;
            host_port
        }
        None => authority,
    };
    let (host, port) = if let Some(bracketed) = host_port.strip_prefix('[') {
        let Some((inner, after)) = bracketed.split_once(']') else {
            return Err("unclosed [ in the host".to_string());
        };
        if inner.parse::<Ipv6Addr>().is_err() {
            return Err(format!("invalid IPv6 host [{inner}]"));
        }
        let port = match after {
            "" => None,
            _ => match after.strip_prefix(':') {
                Some(port) => Some(port),
                None => return Err("unexpected text after the IPv6 host".to_string()),
            },
        };
        (None, port)
    } else {
        match host_port.split_once(':') {
            Some((host, port)) => (Some(host), Some(port)),
            None => (Some(host_port), None),
        }
    };
    if let Some(host) = host {
        if host.is_empty() {
            return Err("no host".to_string());
        }
        if host.parse::<Ipv4Addr>().is_err() {
            parse_domain(host).map_err(|reason| format!("invalid host: {reason}"))?;
        }
    }
    if let Some(port) = port {
        let valid = !port.is_empty()
            && port.bytes().all(|b| b.is_ascii_digit())
            && port.parse::<u16>().is_ok();
        if !valid {
            return Err(format!("invalid port {port:?}"));
        }
    }
    let (before_fragment, fragment) = match tail.split_once('#') {
        Some((before, fragment)) => (before, Some(fragment)),
        None => (tail, None),
    };
    let path_or_query =
        |c: char| is_unreserved(c) || is_sub_delim(c) || matches!(c, ':' | '@' | '/' | '?');
    check_url_chars(before_fragment, "path or query", path_or_query)?;
    if let Some(fragment) = fragment {
        check_url_chars(fragment, "fragment", path_or_query)?;
    }
    Ok(())
}

/// Parses a `mail` value and returns it with the domain in lower case.
fn parse_mail(value: &str) -> Result<String, String> {
    if value.is_empty() {
        return Err("empty".to_string());
    }
    let Some((local, domain)) = value.rsplit_once('@') else {
        return Err("no @".to_string());
    };
    if local.is_empty() {
        return Err("empty local part".to_string());
    }
    if local.len() > MAX_LOCAL_PART_LEN {
        return Err(format!(
            "local part longer than {MAX_LOCAL_PART_LEN} characters"
        ));
    }
    let is_atext = |c: char| {
        c.is_ascii_alphanumeric()
            || matches!(
                c,
                '!' | '#'
                    | '$'
                    | '%'
                    | '&'
                    | '\''
                    | '*'
                    | '+'
                    | '-'
                    | '/'
                    | '='
                    | '?'
                    | '^'
                    | '_'
                    | '`'
                    | '{'
                    | '|'
                    | '}'
                    | '~'
            )
    };
    if let Some(bad) = local.chars().find(|c| !is_atext(*c) && *c != '.') {
        return Err(format!("local part contains {bad:?}"));
    }
    if local.starts_with('.') || local.ends_with('.') || local.contains("..") {
        return Err("local part has a misplaced dot".to_string());
    }
    let domain = parse_domain(domain).map_err(|reason| format!("invalid domain: {reason}"))?;
    let mailbox = format!("{local}@{domain}");
    if mailbox.len() > MAX_MAILBOX_LEN {
        return Err(format!("longer than {MAX_MAILBOX_LEN} characters"));
    }
    Ok(mailbox)
}

/// Parses a `mask` value into the netmask it denotes.
pub(crate) fn parse_mask(value: &str) -> Result<Ipv4Addr, String> {
    if value.is_empty() {
        return Err("empty".to_string());
    }
    if value.contains(':') {
        return Err("IPv6 has no netmasks; give an IPv4 netmask or a prefix length".to_string());
    }
    if value.contains('.') {
        let mask: Ipv4Addr = value
            .parse()
            .map_err(|_| "not a dotted IPv4 netmask".to_string())?;
        let bits = u32::from(mask);
        if bits.leading_ones() + bits.trailing_zeros() != 32 {
            return Err("the one bits are not contiguous".to_string());
        }
        return Ok(mask);
    }
    let digits = value.strip_prefix('/').unwrap_or(value);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err("not a netmask or prefix length".to_string());
    }
    match digits.parse::<u32>() {
        Ok(0) => Ok(Ipv4Addr::UNSPECIFIED),
        Ok(len @ 1..=32) => Ok(Ipv4Addr::from(u32::MAX << (32 - len))),
        _ => Err("prefix length out of range (0 to 32)".to_string()),
    }
}

/// Parses a `mac` value into its six octets.
pub(crate) fn parse_mac(value: &str) -> Result<[u8; 6], String> {
    if value.is_empty() {
        return Err("empty".to_string());
    }
    let separator = match (value.contains(':'), value.contains('-')) {
        (true, true) => return Err("mixes : and - separators".to_string()),
        (true, false) => ':',
        (false, true) => '-',
        (false, false) => return Err("octets are not separated by : or -".to_string()),
    };
    let parts: Vec<&str> = value.split(separator).collect();
    if parts.len() != 6 {
        return Err(format!("{} octets instead of six", parts.len()));
    }
    let mut octets = [0u8; 6];
    for (octet, part) in octets.iter_mut().zip(&parts) {
        if part.len() != 2 || !part.bytes().all(|b| b.is_ascii_hexdigit()) {
            return Err(format!("octet {part:?} is not two hexadecimal digits"));
        }
        *octet = u8::from_str_radix(part, 16).map_err(|err| err.to_string())?;
    }
    Ok(octets)
}

/// Formats six octets as a lower-case, `:` separated MAC address.
fn format_mac(octets: &[u8; 6]) -> String {
    let hex: Vec<String> = octets.iter().map(|octet| format!("{octet:02x}")).collect();
    hex.join(":")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ok(ty: PropType, value: &str) -> String {
        match check_value("p", ty, &[], value) {
            Ok(stored) => stored,
            Err(err) => panic!("{ty} {value:?} was refused: {err}"),
        }
    }

    fn bad(ty: PropType, value: &str) -> InvalidValue {
        match check_value("p", ty, &[], value) {
            Ok(stored) => panic!("{ty} {value:?} was accepted as {stored:?}"),
            Err(err) => err,
        }
    }

    fn reason(ty: PropType, value: &str) -> String {
        bad(ty, value).reason().to_string()
    }

    #[test]
    fn str_accepts_anything() {
        for value in ["", " ", "hello world", "a\0b", "ünïcödé", "\n"] {
            assert_eq!(ok(PropType::Str, value), value);
        }
    }

    #[test]
    fn num_accepts_signed_integers_and_canonicalises() {
        assert_eq!(ok(PropType::Num, "0"), "0");
        assert_eq!(ok(PropType::Num, "-42"), "-42");
        assert_eq!(ok(PropType::Num, "+007"), "7");
        assert_eq!(ok(PropType::Num, "-0"), "0");
        assert_eq!(
            ok(PropType::Num, "9223372036854775807"),
            "9223372036854775807"
        );
        assert_eq!(
            ok(PropType::Num, "-9223372036854775808"),
            "-9223372036854775808"
        );
    }

    #[test]
    fn num_refuses_malformed_values() {
        assert_eq!(reason(PropType::Num, ""), "empty");
        for value in [
            " 1", "1 ", "1_000", "1e3", "1.5", "0x10", "-", "+", "--1", "١", "ten",
        ] {
            assert_eq!(
                reason(PropType::Num, value),
                "not a decimal integer",
                "{value:?}"
            );
        }
        assert!(reason(PropType::Num, "9223372036854775808").starts_with("out of range"));
        assert!(reason(PropType::Num, "-9223372036854775809").starts_with("out of range"));
    }

    #[test]
    fn unum_accepts_unsigned_integers() {
        assert_eq!(ok(PropType::Unum, "0"), "0");
        assert_eq!(ok(PropType::Unum, "+80"), "80");
        assert_eq!(ok(PropType::Unum, "0080"), "80");
        assert_eq!(
            ok(PropType::Unum, "18446744073709551615"),
            "18446744073709551615"
        );
    }

    #[test]
    fn unum_refuses_negative_overflowing_and_malformed_values() {
        assert_eq!(reason(PropType::Unum, "-1"), "negative");
        assert_eq!(reason(PropType::Unum, "-0"), "negative");
        assert_eq!(reason(PropType::Unum, "-"), "not a decimal integer");
        assert_eq!(reason(PropType::Unum, ""), "empty");
        assert_eq!(reason(PropType::Unum, "80 "), "not a decimal integer");
        assert!(reason(PropType::Unum, "18446744073709551616").starts_with("out of range"));
    }

    #[test]
    fn bool_accepts_the_ini_words_in_any_case() {
        for value in ["true", "TRUE", "True", "yes", "On", "1"] {
            assert_eq!(ok(PropType::Bool, value), "true", "{value:?}");
        }
        for value in ["false", "FALSE", "no", "OFF", "0"] {
            assert_eq!(ok(PropType::Bool, value), "false", "{value:?}");
        }
    }

    #[test]
    fn bool_refuses_other_words() {
        assert_eq!(reason(PropType::Bool, ""), "empty");
        for value in [" true", "true ", "t", "y", "2", "-1", "yess", "nope", "10"] {
            assert_eq!(reason(PropType::Bool, value), "not a boolean", "{value:?}");
        }
    }

    #[test]
    fn select_maps_a_choice_name_to_its_value() {
        let choices = [
            Choice::new("inproc").with_value("0"),
            Choice::new("pooled").with_value("2"),
            Choice::new("same"),
        ];
        assert_eq!(
            check_value("p", PropType::Select, &choices, "pooled").as_deref(),
            Ok("2")
        );
        assert_eq!(
            check_value("p", PropType::Select, &choices, "same").as_deref(),
            Ok("same")
        );
        for value in ["Pooled", "2", " pooled", "", "other"] {
            let err = check_value("p", PropType::Select, &choices, value).unwrap_err();
            assert_eq!(err.expected(), "one of: inproc, pooled, same");
        }
    }

    #[test]
    fn path_accepts_absolute_relative_and_windows_paths() {
        for value in [
            "/var/log",
            "logs",
            "./a/../b",
            "..",
            r"\skeleton\suspend",
            r"C:\Program Files\x",
            "a b",
        ] {
            assert_eq!(ok(PropType::Path, value), value);
        }
    }

    #[test]
    fn path_refuses_empty_control_and_padded_values() {
        assert_eq!(reason(PropType::Path, ""), "empty");
        assert_eq!(reason(PropType::Path, "a\0b"), "contains a NUL character");
        assert_eq!(
            reason(PropType::Path, "a\nb"),
            "contains a control character"
        );
        assert_eq!(
            reason(PropType::Path, "a\tb"),
            "contains a control character"
        );
        assert_eq!(
            reason(PropType::Path, "a\u{7f}"),
            "contains a control character"
        );
        assert_eq!(
            reason(PropType::Path, " /tmp"),
            "has leading or trailing whitespace"
        );
        assert_eq!(
            reason(PropType::Path, "/tmp "),
            "has leading or trailing whitespace"
        );
    }

    #[test]
    fn password_accepts_any_non_empty_text_and_is_never_shown() {
        assert_eq!(ok(PropType::Password, " s3cr3t "), " s3cr3t ");
        let err = bad(PropType::Password, "");
        assert_eq!(err.value(), None);
        assert_eq!(
            err.to_string(),
            "invalid value for parameter \"p\": empty (expected a non-empty password)"
        );
        // Built by hand with a value: the value is dropped all the same.
        let err = InvalidValue::new("pw", PropType::Password, "hunter2", "x", "y");
        assert!(!err.to_string().contains("hunter2"));
        assert!(!format!("{err:?}").contains("hunter2"));
    }

    #[test]
    fn ip_accepts_v4_and_v6_and_canonicalises() {
        assert_eq!(ok(PropType::Ip, "192.0.2.1"), "192.0.2.1");
        assert_eq!(ok(PropType::Ip, "0.0.0.0"), "0.0.0.0");
        assert_eq!(ok(PropType::Ip, "::1"), "::1");
        assert_eq!(ok(PropType::Ip, "2001:DB8:0:0:0:0:0:1"), "2001:db8::1");
        assert_eq!(ok(PropType::Ip, "::ffff:192.0.2.1"), "::ffff:192.0.2.1");
    }

    #[test]
    fn ip_refuses_malformed_addresses() {
        assert_eq!(reason(PropType::Ip, ""), "empty");
        assert_eq!(
            reason(PropType::Ip, "fe80::1%eth0"),
            "zone indices are not accepted"
        );
        assert_eq!(reason(PropType::Ip, "[::1]"), "brackets are not accepted");
        for value in [
            "010.0.0.1",
            "01.2.3.4",
            "1.2.3",
            "1.2.3.4.5",
            "1.2.3.256",
            " 1.2.3.4",
            "1.2.3.4 ",
            "0x1.2.3.4",
            "1,2,3,4",
            "::g",
            "1:2:3:4:5:6:7:8:9",
            "localhost",
            "192.0.2.1/24",
        ] {
            assert_eq!(
                reason(PropType::Ip, value),
                "not an IPv4 or IPv6 address",
                "{value:?}"
            );
        }
    }

    #[test]
    fn domain_accepts_host_names_and_canonicalises() {
        assert_eq!(ok(PropType::Domain, "www.Example.COM"), "www.example.com");
        assert_eq!(ok(PropType::Domain, "example.com."), "example.com");
        assert_eq!(ok(PropType::Domain, "localhost"), "localhost");
        assert_eq!(ok(PropType::Domain, "3com.com"), "3com.com");
        assert_eq!(ok(PropType::Domain, "a-b.c0"), "a-b.c0");
        assert_eq!(
            ok(PropType::Domain, "xn--bcher-kva.example"),
            "xn--bcher-kva.example"
        );
        let label = "a".repeat(63);
        assert_eq!(
            ok(PropType::Domain, &format!("{label}.com")),
            format!("{label}.com")
        );
        let longest = [&label[..], &label[..], &label[..], &"a".repeat(61)].join(".");
        assert_eq!(longest.len(), 253);
        assert_eq!(ok(PropType::Domain, &longest), longest);
        assert_eq!(ok(PropType::Domain, &format!("{longest}.")), longest);
    }

    #[test]
    fn domain_refuses_malformed_names() {
        assert_eq!(reason(PropType::Domain, ""), "empty");
        assert_eq!(reason(PropType::Domain, "."), "has no labels");
        assert_eq!(reason(PropType::Domain, "a..b"), "has an empty label");
        assert_eq!(reason(PropType::Domain, ".a"), "has an empty label");
        assert_eq!(reason(PropType::Domain, "a.b.."), "has an empty label");
        assert_eq!(
            reason(PropType::Domain, &format!("{}.com", "a".repeat(64))),
            "a label is longer than 63 characters"
        );
        let label = "a".repeat(63);
        let too_long = [&label[..], &label[..], &label[..], &"a".repeat(62)].join(".");
        assert_eq!(
            reason(PropType::Domain, &too_long),
            "longer than 253 characters"
        );
        assert!(reason(PropType::Domain, "-a.com").contains("starts or ends with a hyphen"));
        assert!(reason(PropType::Domain, "a-.com").contains("starts or ends with a hyphen"));
        assert!(reason(PropType::Domain, "my_host.com").contains("'_'"));
        assert!(reason(PropType::Domain, "a b.com").contains("' '"));
        assert!(reason(PropType::Domain, "host:80").contains("':'"));
        assert!(reason(PropType::Domain, "bücher.example").contains("non-ASCII"));
        assert!(reason(PropType::Domain, "192.0.2.1").contains("all digits"));
        assert!(reason(PropType::Domain, "123").contains("all digits"));
    }

    #[test]
    fn url_accepts_absolute_urls() {
        for value in [
            "http://example.com",
            "https://www.example.com/path/to?q=1&r=a%20b#frag",
            "ftp://user:pw@ftp.example.com:21/pub/",
            "http://192.0.2.1:8080/",
            "http://[2001:db8::1]:8443/x",
            "http://[::1]",
            "svn+ssh://localhost/repo",
            "http://example.com/~user/a;b=c,d!$'()*+",
        ] {
            assert_eq!(ok(PropType::Url, value), value);
        }
    }

    #[test]
    fn url_refuses_relative_and_malformed_urls() {
        let cases = [
            ("", "empty"),
            (
                "example.com",
                "not an absolute URL with scheme:// and a host",
            ),
            (
                "mailto:user@example.com",
                "not an absolute URL with scheme:// and a host",
            ),
            (
                "/relative/path",
                "not an absolute URL with scheme:// and a host",
            ),
            (
                "http:/example.com",
                "not an absolute URL with scheme:// and a host",
            ),
            ("1http://example.com", "invalid scheme \"1http\""),
            (
                "ht tp://example.com",
                "contains whitespace or control characters",
            ),
            (
                "http://exa mple.com",
                "contains whitespace or control characters",
            ),
            (
                "http://example.com/\n",
                "contains whitespace or control characters",
            ),
            (
                "http://bücher.example",
                "contains non-ASCII characters (percent-encode them)",
            ),
            ("http://", "no host"),
            ("http:///path", "no host"),
            ("http://:80/", "no host"),
            ("http://example.com:/", "invalid port \"\""),
            ("http://example.com:99999/", "invalid port \"99999\""),
            ("http://example.com:8a/", "invalid port \"8a\""),
            ("http://example.com:+80/", "invalid port \"+80\""),
            ("http://[::1/", "unclosed [ in the host"),
            (
                "http://[fe80::1%25eth0]/",
                "invalid IPv6 host [fe80::1%25eth0]",
            ),
            ("http://[::1]x/", "unexpected text after the IPv6 host"),
            (
                "http://example.com/a%2",
                "the path or query has an invalid % escape",
            ),
            (
                "http://example.com/a%zz",
                "the path or query has an invalid % escape",
            ),
            ("http://example.com/a<b>", "the path or query contains '<'"),
            ("http://example.com/a#b#c", "the fragment contains '#'"),
            (
                "http://us er@example.com/",
                "contains whitespace or control characters",
            ),
            (
                "http://u[@example.com/",
                "the user information contains '['",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(reason(PropType::Url, value), expected, "{value:?}");
        }
        assert!(reason(PropType::Url, "http://my_host/").starts_with("invalid host: contains '_'"));
        assert!(reason(PropType::Url, "http://1.2.3.256/").starts_with("invalid host:"));
    }

    #[test]
    fn mail_accepts_mailboxes_and_lowercases_the_domain() {
        assert_eq!(
            ok(PropType::Mail, "John.Doe@Example.COM"),
            "John.Doe@example.com"
        );
        assert_eq!(ok(PropType::Mail, "a+tag@example.com"), "a+tag@example.com");
        assert_eq!(
            ok(PropType::Mail, "postmaster@localhost"),
            "postmaster@localhost"
        );
        assert_eq!(
            ok(PropType::Mail, "!#$%&'*+-/=?^_`{|}~@example.com"),
            "!#$%&'*+-/=?^_`{|}~@example.com"
        );
    }

    #[test]
    fn mail_refuses_malformed_mailboxes() {
        let cases = [
            ("", "empty"),
            ("user", "no @"),
            ("@example.com", "empty local part"),
            ("a@b@example.com", "local part contains '@'"),
            ("a b@example.com", "local part contains ' '"),
            ("\"quoted\"@example.com", "local part contains '\"'"),
            (".a@example.com", "local part has a misplaced dot"),
            ("a.@example.com", "local part has a misplaced dot"),
            ("a..b@example.com", "local part has a misplaced dot"),
            ("user@", "invalid domain: empty"),
            (
                "user@[192.0.2.1]",
                "invalid domain: contains '['; labels take only letters, digits and hyphens",
            ),
            (
                "user@192.0.2.1",
                "invalid domain: the last label is all digits (an IP address is not a domain name)",
            ),
            (
                "user@-example.com",
                "invalid domain: label \"-example\" starts or ends with a hyphen",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(reason(PropType::Mail, value), expected, "{value:?}");
        }
        let long_local = format!("{}@example.com", "a".repeat(65));
        assert_eq!(
            reason(PropType::Mail, &long_local),
            "local part longer than 64 characters"
        );
        let label = "a".repeat(63);
        let long_domain = [&label[..], &label[..], &label[..], &"a".repeat(61)].join(".");
        let too_long = format!("{}@{long_domain}", "a".repeat(10));
        assert_eq!(
            reason(PropType::Mail, &too_long),
            "longer than 254 characters"
        );
    }

    #[test]
    fn mask_accepts_netmasks_and_prefix_lengths() {
        assert_eq!(ok(PropType::Mask, "255.255.255.0"), "255.255.255.0");
        assert_eq!(ok(PropType::Mask, "255.255.255.255"), "255.255.255.255");
        assert_eq!(ok(PropType::Mask, "0.0.0.0"), "0.0.0.0");
        assert_eq!(ok(PropType::Mask, "255.255.240.0"), "255.255.240.0");
        assert_eq!(ok(PropType::Mask, "/24"), "255.255.255.0");
        assert_eq!(ok(PropType::Mask, "24"), "255.255.255.0");
        assert_eq!(ok(PropType::Mask, "/0"), "0.0.0.0");
        assert_eq!(ok(PropType::Mask, "/1"), "128.0.0.0");
        assert_eq!(ok(PropType::Mask, "/32"), "255.255.255.255");
        assert_eq!(ok(PropType::Mask, "/020"), "255.255.240.0");
    }

    #[test]
    fn mask_refuses_non_contiguous_and_malformed_masks() {
        let cases = [
            ("", "empty"),
            ("255.0.255.0", "the one bits are not contiguous"),
            ("0.0.0.255", "the one bits are not contiguous"),
            ("255.255.255.1", "the one bits are not contiguous"),
            ("255.255.255", "not a dotted IPv4 netmask"),
            ("255.255.255.0 ", "not a dotted IPv4 netmask"),
            ("255.255.255.256", "not a dotted IPv4 netmask"),
            ("/33", "prefix length out of range (0 to 32)"),
            ("99999999999", "prefix length out of range (0 to 32)"),
            ("/", "not a netmask or prefix length"),
            ("/-1", "not a netmask or prefix length"),
            ("/+8", "not a netmask or prefix length"),
            ("/ 8", "not a netmask or prefix length"),
            ("24/", "not a netmask or prefix length"),
            (
                "ffff:ffff::",
                "IPv6 has no netmasks; give an IPv4 netmask or a prefix length",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(reason(PropType::Mask, value), expected, "{value:?}");
        }
    }

    #[test]
    fn mac_accepts_colon_and_hyphen_forms_and_canonicalises() {
        assert_eq!(ok(PropType::Mac, "00:1a:2b:3c:4d:5e"), "00:1a:2b:3c:4d:5e");
        assert_eq!(ok(PropType::Mac, "00-1A-2B-3C-4D-5E"), "00:1a:2b:3c:4d:5e");
        assert_eq!(ok(PropType::Mac, "FF:FF:FF:FF:FF:FF"), "ff:ff:ff:ff:ff:ff");
    }

    #[test]
    fn mac_refuses_malformed_addresses() {
        let cases = [
            ("", "empty"),
            ("001a2b3c4d5e", "octets are not separated by : or -"),
            ("001a.2b3c.4d5e", "octets are not separated by : or -"),
            ("00:1a-2b:3c:4d:5e", "mixes : and - separators"),
            ("00:1a:2b:3c:4d", "5 octets instead of six"),
            ("00:1a:2b:3c:4d:5e:6f", "7 octets instead of six"),
            ("00:1a:2b:3c:4d:5e:", "7 octets instead of six"),
            (
                "0:1a:2b:3c:4d:5e",
                "octet \"0\" is not two hexadecimal digits",
            ),
            (
                "000:1a:2b:3c:4d:5e",
                "octet \"000\" is not two hexadecimal digits",
            ),
            (
                "00:1g:2b:3c:4d:5e",
                "octet \"1g\" is not two hexadecimal digits",
            ),
            (
                "00:1a:2b:3c:4d: 5",
                "octet \" 5\" is not two hexadecimal digits",
            ),
            (
                "00:+a:2b:3c:4d:5e",
                "octet \"+a\" is not two hexadecimal digits",
            ),
        ];
        for (value, expected) in cases {
            assert_eq!(reason(PropType::Mac, value), expected, "{value:?}");
        }
    }

    #[test]
    fn errors_name_the_parameter_the_expected_form_and_the_value() {
        let err = check_value("port", PropType::Unum, &[], "eighty").unwrap_err();
        assert_eq!(err.param(), "port");
        assert_eq!(err.ty(), PropType::Unum);
        assert_eq!(err.value(), Some("eighty"));
        assert_eq!(
            err.to_string(),
            "invalid value \"eighty\" for parameter \"port\": not a decimal integer (expected an unsigned 64-bit integer)"
        );
    }

    #[test]
    fn errors_shorten_long_values_and_escape_control_characters() {
        let long = "x".repeat(1000);
        let err = bad(PropType::Num, &long);
        assert_eq!(err.value(), Some(format!("{}...", "x".repeat(64)).as_str()));
        let err = bad(PropType::Path, "a\nb");
        assert!(err.to_string().contains("\"a\\nb\""), "{err}");
        let multibyte = "é".repeat(100);
        assert_eq!(
            bad(PropType::Num, &multibyte)
                .value()
                .map(|v| v.chars().count()),
            Some(67)
        );
    }
}
