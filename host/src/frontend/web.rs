//! The web dashboard's files, embedded in the binary: one page, its script and its style
//! sheet. No external resource is referenced (the server's Content-Security-Policy says so).

const INDEX: &[u8] = include_bytes!("web/index.html");
const SCRIPT: &[u8] = include_bytes!("web/app.js");
const STYLE: &[u8] = include_bytes!("web/app.css");

/// The embedded file at `path` (`/`, `/static/app.js`, ...): its content type and bytes.
pub fn asset(path: &str) -> Option<(&'static str, &'static [u8])> {
    match path {
        "/" | "/index.html" => Some(("text/html; charset=utf-8", INDEX)),
        "/static/app.js" => Some(("text/javascript; charset=utf-8", SCRIPT)),
        "/static/app.css" => Some(("text/css; charset=utf-8", STYLE)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_page_and_what_it_loads_are_served() {
        let (kind, page) = asset("/").unwrap();
        assert!(kind.starts_with("text/html"));
        let page = String::from_utf8_lossy(page);
        for referenced in ["/static/app.js", "/static/app.css"] {
            assert!(page.contains(referenced), "{referenced}");
            assert!(asset(referenced).is_some(), "{referenced}");
        }
        assert!(
            !page.contains("http://") && !page.contains("https://"),
            "no external resource"
        );
        assert!(asset("/nope").is_none());
    }
}
