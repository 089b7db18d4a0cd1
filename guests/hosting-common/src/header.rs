//! The `# paasm:` header of a virtual host file: one `# paasm: name=value` comment line per
//! recorded field, at the top of the file, before the web server's own syntax (both nginx
//! and Apache read `#` lines as comments).
//!
//! Values are written as they are, except that `%` and control characters are escaped as
//! `%XX`, so every value stays on its line. Decoding reads the leading block of `#` lines
//! and ignores comments that are not fields; the last of two equal names wins.

use crate::Values;

/// What starts a field line.
pub const PREFIX: &str = "# paasm: ";

/// The version of the set of fields; a change that old files cannot be read with bumps it.
pub const FORMAT: &str = "1";

/// The header lines of `fields`, in their order, each ending with a newline.
pub fn encode<'a>(fields: impl IntoIterator<Item = (&'a str, &'a str)>) -> String {
    let mut out = String::new();
    for (name, value) in fields {
        out.push_str(PREFIX);
        out.push_str(&escape(name));
        out.push('=');
        out.push_str(&escape(value));
        out.push('\n');
    }
    out
}

/// The fields of the header at the top of `text`: its leading `#` lines of the form
/// `# paasm: name=value`. Empty when the file has none.
pub fn decode(text: &str) -> Values {
    let mut fields = Values::new();
    for line in text.lines() {
        let line = line.strip_suffix('\r').unwrap_or(line);
        if !line.starts_with('#') {
            break;
        }
        let Some(field) = line.strip_prefix(PREFIX) else {
            continue;
        };
        let Some((name, value)) = field.split_once('=') else {
            continue;
        };
        if let (Some(name), Some(value)) = (unescape(name.trim()), unescape(value)) {
            fields.insert(name, value);
        }
    }
    fields
}

fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        if c == '%' || c.is_control() {
            // Control characters beyond U+00FF do not exist, so two digits always suffice.
            let mut buf = [0u8; 4];
            for byte in c.encode_utf8(&mut buf).bytes() {
                out.push_str(&format!("%{byte:02X}"));
            }
        } else {
            out.push(c);
        }
    }
    out
}

fn unescape(text: &str) -> Option<String> {
    let bytes = text.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = text.get(i + 1..i + 3)?;
            out.push(u8::from_str_radix(hex, 16).ok()?);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn fields_round_trip_in_order() {
        let text = encode([
            ("provider", "nginx_vhost"),
            ("docrootpath", "/srv/my sites/a=b"),
        ]);
        assert_eq!(
            text,
            "# paasm: provider=nginx_vhost\n# paasm: docrootpath=/srv/my sites/a=b\n"
        );
        let fields = decode(&text);
        assert_eq!(fields["provider"], "nginx_vhost");
        assert_eq!(fields["docrootpath"], "/srv/my sites/a=b");
    }

    #[test]
    fn percent_and_control_characters_are_escaped() {
        let odd = "50%\nserver { }\t\u{7f}é";
        let text = encode([("note", odd)]);
        assert_eq!(text.lines().count(), 1, "{text:?}");
        assert!(text.contains("50%25%0Aserver { }%09%7Fé"), "{text:?}");
        assert_eq!(decode(&text)["note"], odd);
    }

    #[test]
    fn only_the_leading_comment_block_is_read() {
        let text = "# Managed by paasm\n# paasm: a=1\n# a comment\n# paasm: broken\n\
                    # paasm: a=2\r\nserver {\n# paasm: b=3\n}\n";
        let fields = decode(text);
        assert_eq!(fields.len(), 1, "{fields:?}");
        assert_eq!(fields["a"], "2");
        assert!(decode("server {}\n# paasm: a=1\n").is_empty());
        assert!(decode("").is_empty());
    }

    #[test]
    fn bad_escapes_drop_the_field() {
        let fields = decode("# paasm: a=%zz\n# paasm: b=%4\n# paasm: c=%FF\n# paasm: d=%41\n");
        assert_eq!(fields.len(), 1, "{fields:?}");
        assert_eq!(fields["d"], "A");
    }
}
