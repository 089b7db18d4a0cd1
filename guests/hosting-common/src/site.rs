//! The site a virtual host file describes, the rules its values follow, and the [`View`] a
//! renderer gets.
//!
//! The rules keep everything that ends up in a web server configuration free of what could
//! change its meaning: host names are RFC 1123 names in lower case; the document root is a
//! relative path of plain components (`[A-Za-z0-9._-]`, no `.` or `..`) inside the account's
//! home; every path written is absolute and has no `"`, `\`, `$`, `<`, `>` or control
//! characters (the renderers quote paths, so spaces are fine); default document names are
//! plain file names.

use std::net::IpAddr;

use crate::header;
use crate::schema::{DEFAULT_DOCS, STATUS_CHOICES};
use crate::{Error, Values};

/// A physical key of the parent account, as recorded in the header (`num:7`, `str:alice`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum PKey {
    Num(i64),
    Str(String),
}

impl PKey {
    /// The recorded form.
    pub fn encode(&self) -> String {
        match self {
            PKey::Num(n) => format!("num:{n}"),
            PKey::Str(s) => format!("str:{s}"),
        }
    }

    /// Reads the recorded form back.
    pub fn decode(text: &str) -> Option<Self> {
        if let Some(n) = text.strip_prefix("num:") {
            return n.parse().ok().map(PKey::Num);
        }
        text.strip_prefix("str:").map(|s| PKey::Str(s.to_string()))
    }
}

/// One site: the instance parameters, plus what the header records beside them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Site {
    /// Canonical: lower case, without a trailing dot.
    pub hostname: String,
    pub ip: IpAddr,
    pub port: u16,
    /// The document root relative to the account's home.
    pub docroot: String,
    /// `<account home>/<docroot>`.
    pub docrootpath: String,
    /// Directory listing.
    pub index: bool,
    pub dedicatedip: bool,
    /// The value of a `status` choice (`1`, `3`, `5`, `7`).
    pub status: String,
    /// Serving the suspend skeleton instead of the document root.
    pub suspended: bool,
    /// The parent account's name and physical key, when known.
    pub account: Option<String>,
    pub account_pkey: Option<PKey>,
}

impl Site {
    /// A site of alice's, `example.com` on 192.0.2.10:80, for the providers' tests.
    #[doc(hidden)]
    pub fn example() -> Site {
        Site {
            hostname: "example.com".into(),
            ip: IpAddr::V4(std::net::Ipv4Addr::new(192, 0, 2, 10)),
            port: 80,
            docroot: "example.com".into(),
            docrootpath: "/srv/homes/alice/example.com".into(),
            index: false,
            dedicatedip: false,
            status: "1".into(),
            suspended: false,
            account: Some("alice".into()),
            account_pkey: Some(PKey::Num(1)),
        }
    }

    /// The `listen` address: `192.0.2.10:80`, `[2001:db8::1]:80`.
    pub fn listen(&self) -> String {
        match self.ip {
            IpAddr::V4(ip) => format!("{ip}:{}", self.port),
            IpAddr::V6(ip) => format!("[{ip}]:{}", self.port),
        }
    }

    /// The instance parameters, as the collection holds them.
    pub fn values(&self) -> Values {
        [
            ("hostname", self.hostname.clone()),
            ("ip", self.ip.to_string()),
            ("port", self.port.to_string()),
            ("docroot", self.docroot.clone()),
            ("docrootpath", self.docrootpath.clone()),
            ("index", self.index.to_string()),
            ("dedicatedip", self.dedicatedip.to_string()),
            ("status", self.status.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_string(), v))
        .collect()
    }

    /// The header recording this site, written by `provider`.
    pub fn header(&self, provider: &str) -> String {
        let mut fields: Vec<(String, String)> = vec![
            ("provider".into(), provider.to_string()),
            ("format".into(), header::FORMAT.to_string()),
        ];
        fields.extend(self.values());
        fields.push(("suspended".into(), self.suspended.to_string()));
        if let Some(account) = &self.account {
            fields.push(("account".into(), account.clone()));
        }
        if let Some(pkey) = &self.account_pkey {
            fields.push(("account-pkey".into(), pkey.encode()));
        }
        // `values` is sorted by name; the header lists the fields in schema order.
        let order = [
            "provider",
            "format",
            "hostname",
            "ip",
            "port",
            "docroot",
            "docrootpath",
            "index",
            "dedicatedip",
            "status",
            "suspended",
            "account",
            "account-pkey",
        ];
        fields.sort_by_key(|(name, _)| order.iter().position(|o| o == name));
        format!(
            "# Managed by paasm ({provider}): changes to this file are overwritten.\n{}",
            header::encode(fields.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        )
    }

    /// The site recorded in the header `fields` (as [`header::decode`] returns them).
    pub fn from_header(fields: &Values) -> Result<Site, String> {
        let field = |name: &str| {
            fields
                .get(name)
                .map(String::as_str)
                .ok_or_else(|| format!("no {name} field"))
        };
        let format = field("format")?;
        if format != header::FORMAT {
            return Err(format!("unknown format {format:?}"));
        }
        let hostname = named("hostname", canonical_hostname(field("hostname")?))?;
        let docroot = named("docroot", canonical_docroot(field("docroot")?))?;
        let docrootpath = field("docrootpath")?.to_string();
        named("docrootpath", check_conf_path(&docrootpath))?;
        Ok(Site {
            hostname,
            ip: named("ip", parse_ip(field("ip")?))?,
            port: named("port", parse_port(field("port")?))?,
            docroot,
            docrootpath,
            index: named("index", parse_bool(field("index")?))?,
            dedicatedip: named("dedicatedip", parse_bool(field("dedicatedip")?))?,
            status: named("status", parse_status(field("status")?))?,
            suspended: named("suspended", parse_bool(field("suspended")?))?,
            account: fields.get("account").cloned(),
            account_pkey: fields.get("account-pkey").and_then(|k| PKey::decode(k)),
        })
    }
}

/// `r` with its error prefixed by the field's name.
fn named<T>(name: &str, r: Result<T, String>) -> Result<T, String> {
    r.map_err(|e| format!("{name}: {e}"))
}

/// What a renderer writes for one site.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct View<'a> {
    pub site: &'a Site,
    /// `ip:port`, IPv6 in brackets.
    pub listen: String,
    /// The directory served: the document root, or the suspend skeleton while suspended.
    pub root: &'a str,
    /// Whether the suspend skeleton is served: every path answers its `index.html`.
    pub suspended: bool,
    /// Directory listing (never while suspended).
    pub autoindex: bool,
    /// The default documents, in order; may be empty (then the renderer leaves the server's
    /// default).
    pub index_files: &'a [String],
    pub access_log: String,
    pub error_log: String,
}

impl<'a> View<'a> {
    /// The view of `site` with its logs in `logsdir`, serving `skeleton` while suspended.
    pub fn new(
        site: &'a Site,
        logsdir: &str,
        skeleton: &'a str,
        index_files: &'a [String],
    ) -> Self {
        View {
            site,
            listen: site.listen(),
            root: if site.suspended {
                skeleton
            } else {
                &site.docrootpath
            },
            suspended: site.suspended,
            autoindex: site.index && !site.suspended,
            index_files,
            access_log: join(logsdir, &format!("{}.access.log", site.hostname)),
            error_log: join(logsdir, &format!("{}.error.log", site.hostname)),
        }
    }
}

/// `base/rel` with exactly one `/` between them.
pub fn join(base: &str, rel: &str) -> String {
    let base = base.trim_end_matches('/');
    format!("{base}/{}", rel.trim_start_matches('/'))
}

/// A host name in canonical form: lower case, without the trailing dot.
pub fn canonical_hostname(text: &str) -> Result<String, String> {
    let name = text.strip_suffix('.').unwrap_or(text).to_ascii_lowercase();
    if name.is_empty() {
        return Err("empty".into());
    }
    if name.len() > 253 {
        return Err("longer than 253 characters".into());
    }
    for label in name.split('.') {
        if label.is_empty() || label.len() > 63 {
            return Err("labels must have 1 to 63 characters".into());
        }
        if !label
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-')
        {
            return Err("labels take only letters, digits and hyphens".into());
        }
        if label.starts_with('-') || label.ends_with('-') {
            return Err("labels may not start or end with a hyphen".into());
        }
    }
    Ok(name)
}

/// Whether `text` is a plain path component: `[A-Za-z0-9._-]+`, not `.` or `..`.
pub fn is_plain_component(text: &str) -> bool {
    !text.is_empty()
        && text != "."
        && text != ".."
        && text
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || matches!(b, b'.' | b'_' | b'-'))
}

/// A document root in canonical form: a relative path of plain components (`www`,
/// `sites/shop`), without a trailing `/`.
pub fn canonical_docroot(text: &str) -> Result<String, String> {
    if text.is_empty() {
        return Err("empty".into());
    }
    if text.starts_with('/') {
        return Err("must be relative to the account's home".into());
    }
    if text.len() > 1024 {
        return Err("longer than 1024 characters".into());
    }
    if !text
        .trim_end_matches('/')
        .split('/')
        .all(is_plain_component)
    {
        return Err(
            "each component takes only letters, digits, '.', '_' and '-', and may not be '.' or '..'"
                .into(),
        );
    }
    Ok(text.trim_end_matches('/').to_string())
}

/// Checks a path that goes into a web server configuration: absolute, and nothing that
/// could end its quoted string or be expanded.
pub fn check_conf_path(text: &str) -> Result<(), String> {
    if !text.starts_with('/') {
        return Err(format!("{text:?} is not an absolute path"));
    }
    if let Some(c) = text
        .chars()
        .find(|c| c.is_control() || matches!(c, '"' | '\\' | '$' | '<' | '>'))
    {
        return Err(format!(
            "{text:?} contains {c:?}, which cannot be written into a web server configuration"
        ));
    }
    Ok(())
}

pub fn parse_ip(text: &str) -> Result<IpAddr, String> {
    text.parse()
        .map_err(|_| format!("{text:?} is not an ipv4 or ipv6 address"))
}

/// A port: 1 to 65535.
pub fn parse_port(text: &str) -> Result<u16, String> {
    match text.parse::<u16>() {
        Ok(0) | Err(_) => Err(format!("{text:?} is not a port number (1 to 65535)")),
        Ok(port) => Ok(port),
    }
}

/// A boolean in any of the forms the host accepts.
pub fn parse_bool(text: &str) -> Result<bool, String> {
    match text.to_ascii_lowercase().as_str() {
        "true" | "yes" | "on" | "1" => Ok(true),
        "false" | "no" | "off" | "0" => Ok(false),
        _ => Err(format!("{text:?} is not true or false")),
    }
}

/// A `status`: a choice's value, or its name; answers the value.
pub fn parse_status(text: &str) -> Result<String, String> {
    STATUS_CHOICES
        .iter()
        .find(|c| c.value == text || c.name == text)
        .map(|c| c.value.to_string())
        .ok_or_else(|| {
            let names: Vec<&str> = STATUS_CHOICES.iter().map(|c| c.name).collect();
            format!("{text:?} is not one of {}", names.join(", "))
        })
}

/// The default documents of `defaultdocs` (`index.html, index.htm`): names separated by
/// commas or white space.
pub fn parse_defaultdocs(text: Option<&str>) -> Result<Vec<String>, String> {
    let text = text.unwrap_or(DEFAULT_DOCS);
    let docs: Vec<String> = text
        .split(|c: char| c == ',' || c.is_whitespace())
        .filter(|d| !d.is_empty())
        .map(str::to_string)
        .collect();
    if let Some(bad) = docs.iter().find(|d| !is_plain_component(d)) {
        return Err(format!(
            "{bad:?} is not a plain file name (letters, digits, '.', '_' and '-')"
        ));
    }
    Ok(docs)
}

/// The value of `name` parsed by `parse`, or an invalid-parameter error naming it.
pub fn param<T>(
    values: &Values,
    name: &str,
    parse: impl Fn(&str) -> Result<T, String>,
) -> Result<Option<T>, Error> {
    values
        .get(name)
        .map(|v| parse(v).map_err(|e| Error::invalid(name, e)))
        .transpose()
}

#[cfg(test)]
mod tests {
    use super::*;

    pub(crate) fn site() -> Site {
        Site::example()
    }

    #[test]
    fn the_header_records_every_instance_parameter() {
        let mut s = site();
        s.ip = "2001:DB8::1".parse().unwrap();
        s.suspended = true;
        s.index = true;
        s.docrootpath = "/srv/my homes/alice/example.com".into();
        let text = s.header("nginx_vhost");
        assert!(
            text.starts_with("# Managed by paasm (nginx_vhost)"),
            "{text}"
        );
        let lines: Vec<&str> = text.lines().skip(1).collect();
        assert_eq!(
            lines,
            [
                "# paasm: provider=nginx_vhost",
                "# paasm: format=1",
                "# paasm: hostname=example.com",
                "# paasm: ip=2001:db8::1",
                "# paasm: port=80",
                "# paasm: docroot=example.com",
                "# paasm: docrootpath=/srv/my homes/alice/example.com",
                "# paasm: index=true",
                "# paasm: dedicatedip=false",
                "# paasm: status=1",
                "# paasm: suspended=true",
                "# paasm: account=alice",
                "# paasm: account-pkey=num:1",
            ]
        );
        let fields = header::decode(&text);
        assert_eq!(Site::from_header(&fields).unwrap(), s);
        for name in s.values().keys() {
            assert!(fields.contains_key(name), "{name} is recorded");
        }
    }

    #[test]
    fn a_broken_header_says_which_field() {
        let mut fields = header::decode(&site().header("nginx_vhost"));
        fields.insert("port".into(), "0".into());
        let err = Site::from_header(&fields).unwrap_err();
        assert!(err.starts_with("port: "), "{err}");
        fields.remove("port");
        assert_eq!(Site::from_header(&fields).unwrap_err(), "no port field");
        fields.insert("format".into(), "2".into());
        assert!(Site::from_header(&fields).unwrap_err().contains("format"));
        // Without the account fields (a file from before they were known) it still reads.
        let mut fields = header::decode(&site().header("nginx_vhost"));
        fields.remove("account");
        fields.remove("account-pkey");
        let read = Site::from_header(&fields).unwrap();
        assert_eq!((read.account, read.account_pkey), (None, None));
    }

    #[test]
    fn listen_addresses_bracket_ipv6() {
        let mut s = site();
        assert_eq!(s.listen(), "192.0.2.10:80");
        s.ip = "::1".parse().unwrap();
        s.port = 8080;
        assert_eq!(s.listen(), "[::1]:8080");
    }

    #[test]
    fn host_names_are_canonical() {
        assert_eq!(
            canonical_hostname("WWW.Example.COM.").unwrap(),
            "www.example.com"
        );
        assert_eq!(canonical_hostname("localhost").unwrap(), "localhost");
        for bad in [
            "", ".", "a..b", "-a.com", "a-.com", "a b.com", "a/b", "../etc", "a;b", "é.com",
        ] {
            assert!(canonical_hostname(bad).is_err(), "{bad:?}");
        }
        assert!(canonical_hostname(&"a".repeat(64)).is_err());
        assert!(
            canonical_hostname(&["a"; 127].join(".")).is_ok(),
            "253 characters"
        );
        assert!(
            canonical_hostname(&["a"; 128].join(".")).is_err(),
            "255 characters"
        );
    }

    #[test]
    fn document_roots_stay_inside_the_home() {
        for good in ["www", "example.com", "sites/shop", "a_b-c.d"] {
            assert_eq!(canonical_docroot(good).as_deref(), Ok(good), "{good:?}");
        }
        assert_eq!(canonical_docroot("www/").as_deref(), Ok("www"));
        for bad in [
            "",
            "/www",
            "/",
            ".",
            "..",
            "../bob",
            "www/../../etc",
            "a//b",
            "a b",
            "a\"b",
            "$root",
            "a\nb",
        ] {
            assert!(canonical_docroot(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn configuration_paths_are_absolute_and_quotable() {
        assert_eq!(check_conf_path("/srv/my sites/x"), Ok(()));
        for bad in [
            "srv/x",
            "",
            "/srv/\"x",
            "/srv/x\\",
            "/srv/$host",
            "/srv/<x>",
            "/srv/x\n",
        ] {
            assert!(check_conf_path(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn values_parse_like_the_host_stores_them() {
        assert_eq!(parse_port("80"), Ok(80));
        assert_eq!(parse_port("65535"), Ok(65535));
        assert!(parse_port("0").is_err());
        assert!(parse_port("65536").is_err());
        assert!(parse_port("-1").is_err());
        assert_eq!(parse_bool("TRUE"), Ok(true));
        assert_eq!(parse_bool("off"), Ok(false));
        assert!(parse_bool("perhaps").is_err());
        assert_eq!(parse_status("3").unwrap(), "3");
        assert_eq!(parse_status("pausing").unwrap(), "5");
        assert!(parse_status("flying").is_err());
        assert!(parse_status("2").is_err());
        assert_eq!(
            parse_ip("2001:DB8:0::1").unwrap().to_string(),
            "2001:db8::1"
        );
        assert!(parse_ip("[::1]").is_err());
        assert!(parse_ip("999.1.1.1").is_err());
    }

    #[test]
    fn default_documents_split_on_commas_and_spaces() {
        assert_eq!(
            parse_defaultdocs(None).unwrap(),
            ["index.html", "index.htm"]
        );
        assert_eq!(
            parse_defaultdocs(Some("default.htm,index.php  home.html")).unwrap(),
            ["default.htm", "index.php", "home.html"]
        );
        assert!(parse_defaultdocs(Some(" , ")).unwrap().is_empty());
        assert!(parse_defaultdocs(Some("index.html; evil")).is_err());
        assert!(parse_defaultdocs(Some("../x.html")).is_err());
        assert!(parse_defaultdocs(Some("$uri")).is_err());
    }

    #[test]
    fn the_view_serves_the_skeleton_while_suspended() {
        let docs = vec!["index.html".to_string()];
        let mut s = site();
        s.index = true;
        let v = View::new(&s, "/var/log/web/", "/srv/suspended", &docs);
        assert_eq!(v.root, "/srv/homes/alice/example.com");
        assert!(v.autoindex && !v.suspended);
        assert_eq!(v.access_log, "/var/log/web/example.com.access.log");
        assert_eq!(v.error_log, "/var/log/web/example.com.error.log");
        s.suspended = true;
        let v = View::new(&s, "/var/log/web", "/srv/suspended", &docs);
        assert_eq!(v.root, "/srv/suspended");
        assert!(!v.autoindex && v.suspended);
    }

    #[test]
    fn joins_have_one_slash() {
        assert_eq!(join("/srv/homes/", "alice"), "/srv/homes/alice");
        assert_eq!(join("/srv/homes", "alice"), "/srv/homes/alice");
        assert_eq!(join("/", "alice"), "/alice");
    }

    #[test]
    fn physical_keys_round_trip() {
        for k in [PKey::Num(-3), PKey::Num(7), PKey::Str("a:b".into())] {
            assert_eq!(PKey::decode(&k.encode()), Some(k));
        }
        assert_eq!(PKey::decode("7"), None);
        assert_eq!(PKey::decode("num:x"), None);
    }
}
