//! The web dashboard's files, embedded in the binary.

/// The embedded file at `path` (`/`, `/static/app.js`, ...): its content type and bytes.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    match path {
        "/" | "/index.html" => Some((
            "text/html; charset=utf-8",
            b"<!doctype html><title>paasm</title>",
        )),
        _ => None,
    }
}
