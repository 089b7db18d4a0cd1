//! The operations of a hosting provider, on plain data and the file system.
//!
//! Each takes the values of the call's collection (a [`Call`]) and the provider's
//! [`Syntax`], does its work with `std::fs`, and answers an [`Outcome`]: the values to set in
//! the collection and what to log. Nothing is kept between calls: the virtual host file is
//! the only record of a site.

use std::fs;
use std::io;
use std::path::Path;

use crate::site::{
    PKey, Site, View, canonical_docroot, canonical_hostname, check_conf_path, is_plain_component,
    join, param, parse_bool, parse_defaultdocs, parse_ip, parse_port, parse_status,
};
use crate::{Error, Syntax, Values, header};

/// One call's input.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Call {
    /// The instance's collection: its parameters and the config attributes of the
    /// implementation and of its parents.
    pub params: Values,
    /// The logical key, as the host passed it.
    pub lkey: String,
    /// The parent account's collection (its `name` and `home`, and its config attributes
    /// such as `homes`); none when the host gave no parent.
    pub parent: Option<Values>,
    /// The parent account's physical key.
    pub parent_pkey: Option<PKey>,
}

/// What an operation answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Outcome {
    /// The values to set in the instance's collection.
    pub set: Values,
    /// What was done, for the log.
    pub notes: Vec<String>,
}

/// What `enumerate` answers.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Listing {
    /// The host names of the sites, sorted.
    pub hostnames: Vec<String>,
    /// Files that were skipped and why, for the log.
    pub notes: Vec<String>,
}

/// The config attributes of a call.
struct Config<'a>(&'a Values);

impl<'a> Config<'a> {
    /// A path attribute that must be set.
    fn path(&self, name: &str) -> Result<&'a str, Error> {
        match self.0.get(name).map(String::as_str) {
            Some(path) if !path.is_empty() => Ok(path),
            _ => Err(Error::invalid(
                name,
                "missing: the attribute must be configured",
            )),
        }
    }

    /// A path attribute that is written into the web server configuration.
    fn conf_path(&self, name: &str) -> Result<&'a str, Error> {
        let path = self.path(name)?;
        check_conf_path(path).map_err(|e| Error::invalid(name, e))?;
        Ok(path)
    }

    fn removecontent(&self) -> Result<bool, Error> {
        Ok(param(self.0, "removecontent", parse_bool)?.unwrap_or(false))
    }

    fn defaultdocs(&self) -> Result<Vec<String>, Error> {
        parse_defaultdocs(self.0.get("defaultdocs").map(String::as_str))
            .map_err(|e| Error::invalid("defaultdocs", e))
    }
}

fn failed(what: &str, path: &str, e: io::Error) -> Error {
    Error::Failed(format!("cannot {what} {path}: {e}"))
}

/// The site's host name: the `hostname` parameter, else the logical key; canonical.
fn hostname(call: &Call) -> Result<String, Error> {
    let text = call
        .params
        .get("hostname")
        .filter(|h| !h.is_empty())
        .unwrap_or(&call.lkey);
    canonical_hostname(text).map_err(|e| Error::invalid("hostname", e))
}

/// `<vhostsdir>/<hostname>.conf`.
pub fn conf_file(vhostsdir: &str, hostname: &str) -> String {
    join(vhostsdir, &format!("{hostname}.conf"))
}

/// The account's home: its `home` parameter, else its `homes` config attribute and its
/// `name`.
fn account_home(call: &Call, hostname: &str) -> Result<String, Error> {
    let parent = call.parent.as_ref().ok_or_else(|| {
        Error::Failed(format!(
            "hosting {hostname} has no parent account to hold its document root"
        ))
    })?;
    let home = match parent.get("home").filter(|h| !h.is_empty()) {
        Some(home) => home.clone(),
        None => match (parent.get("homes"), parent.get("name")) {
            (Some(homes), Some(name)) if !homes.is_empty() && is_plain_component(name) => {
                join(homes, name)
            }
            _ => {
                return Err(Error::Failed(format!(
                    "the account of hosting {hostname} has no home: neither its home parameter nor its homes attribute and name"
                )));
            }
        },
    };
    check_conf_path(&home).map_err(|e| {
        Error::Failed(format!(
            "the account's home cannot hold the document root of hosting {hostname}: {e}"
        ))
    })?;
    Ok(home.trim_end_matches('/').to_string())
}

/// The site in the text of a virtual host file written by `provider`.
fn parse_file(text: &str, provider: &str) -> Result<Site, String> {
    let fields = header::decode(text);
    match fields.get("provider") {
        None => Err("not written by paasm: it has no paasm header".into()),
        Some(p) if p != provider => Err(format!("written by {p}, not by {provider}")),
        Some(_) => Site::from_header(&fields).map_err(|e| format!("unreadable paasm header: {e}")),
    }
}

/// The site's file and the site it records; not-found when the file is missing.
fn read_site(call: &Call, syntax: &dyn Syntax) -> Result<(String, Site), Error> {
    let hostname = hostname(call)?;
    let vhostsdir = Config(&call.params).path("vhostsdir")?;
    let conf = conf_file(vhostsdir, &hostname);
    let text = match fs::read_to_string(&conf) {
        Ok(text) => text,
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::NotFound(format!(
                "hosting {hostname} does not exist: there is no {conf}"
            )));
        }
        Err(e) => return Err(failed("read", &conf, e)),
    };
    let site = parse_file(&text, syntax.physical_name())
        .map_err(|e| Error::Failed(format!("{conf}: {e}")))?;
    if site.hostname != hostname {
        return Err(Error::Failed(format!(
            "{conf} describes hosting {}, not {hostname}",
            site.hostname
        )));
    }
    Ok((conf, site))
}

/// Every site written by `provider` in `vhostsdir` (none when the directory is missing),
/// with notes on the files skipped.
fn scan(vhostsdir: &str, provider: &str, notes: &mut Vec<String>) -> Result<Vec<Site>, Error> {
    let entries = match fs::read_dir(vhostsdir) {
        Ok(entries) => entries,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => return Err(failed("list", vhostsdir, e)),
    };
    let mut sites = Vec::new();
    for entry in entries {
        let entry = entry.map_err(|e| failed("list", vhostsdir, e))?;
        let name = entry.file_name();
        let Some(stem) = name.to_str().and_then(|n| n.strip_suffix(".conf")) else {
            continue;
        };
        if stem.starts_with('.') || canonical_hostname(stem).as_deref() != Ok(stem) {
            continue;
        }
        let path = join(vhostsdir, &format!("{stem}.conf"));
        if !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let text = match fs::read_to_string(&path) {
            Ok(text) => text,
            Err(e) => {
                notes.push(format!("skipped {path}: {e}"));
                continue;
            }
        };
        // Files of other writers are none of this provider's business; its own broken
        // files are worth a note.
        if header::decode(&text).get("provider").map(String::as_str) != Some(provider) {
            continue;
        }
        match parse_file(&text, provider) {
            Ok(site) if site.hostname == stem => sites.push(site),
            Ok(site) => notes.push(format!(
                "skipped {path}: it describes hosting {}",
                site.hostname
            )),
            Err(e) => notes.push(format!("skipped {path}: {e}")),
        }
    }
    sites.sort_by(|a, b| a.hostname.cmp(&b.hostname));
    Ok(sites)
}

/// Writes `text` to `path` through a temporary file beside it, so the web server never
/// reads half a file.
fn write_atomically(path: &str, text: &str) -> Result<(), Error> {
    let p = Path::new(path);
    let name = p
        .file_name()
        .and_then(|n| n.to_str())
        .unwrap_or("site.conf");
    let tmp = p.with_file_name(format!(".{name}.paasm-tmp"));
    let tmp_text = tmp.to_string_lossy().into_owned();
    if let Err(e) = fs::write(&tmp, text) {
        let _ = fs::remove_file(&tmp);
        return Err(failed("write", &tmp_text, e));
    }
    fs::rename(&tmp, p).map_err(|e| {
        let _ = fs::remove_file(&tmp);
        failed("write", path, e)
    })
}

fn create_dir(path: &str, what: &str) -> Result<(), Error> {
    fs::create_dir_all(path).map_err(|e| failed(&format!("create {what}"), path, e))
}

/// The page written into a new document root.
fn placeholder_page(hostname: &str) -> String {
    format!(
        "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>{hostname}</title></head>\n\
         <body>\n<h1>{hostname}</h1>\n<p>This is the new site {hostname}. Its content has not been published yet.</p>\n\
         </body>\n</html>\n"
    )
}

/// The page written into a missing suspend skeleton.
const SUSPENDED_PAGE: &str = "<!DOCTYPE html>\n<html>\n<head><meta charset=\"utf-8\"><title>Site suspended</title></head>\n\
<body>\n<h1>This site is suspended</h1>\n<p>Please contact the site's owner or the hosting provider.</p>\n</body>\n</html>\n";

/// Makes the document root and, when it has none of the default documents (nor an
/// `index.html`), an `index.html` naming the site.
fn prepare_docroot(site: &Site, docs: &[String], notes: &mut Vec<String>) -> Result<(), Error> {
    let root = &site.docrootpath;
    create_dir(root, "document root")?;
    let has_index = docs
        .iter()
        .map(String::as_str)
        .chain(["index.html"])
        .any(|doc| Path::new(&join(root, doc)).exists());
    if !has_index {
        let index = join(root, "index.html");
        fs::write(&index, placeholder_page(&site.hostname))
            .map_err(|e| failed("write", &index, e))?;
        notes.push(format!("wrote {index}"));
    }
    Ok(())
}

/// Makes sure the suspend skeleton is a directory with an `index.html`.
fn prepare_skeleton(skeleton: &str, notes: &mut Vec<String>) -> Result<(), Error> {
    match fs::metadata(skeleton) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(Error::invalid(
                "suspendskeleton",
                format!("{skeleton} is not a directory"),
            ));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            create_dir(skeleton, "suspend skeleton")?;
            notes.push(format!("created the suspend skeleton {skeleton}"));
        }
        Err(e) => return Err(failed("read", skeleton, e)),
    }
    let index = join(skeleton, "index.html");
    if !Path::new(&index).exists() {
        fs::write(&index, SUSPENDED_PAGE).map_err(|e| failed("write", &index, e))?;
        notes.push(format!("wrote {index}"));
    }
    Ok(())
}

/// Renders `site` into `conf` (header and body), after making the directories it names.
fn write_site(
    conf: &str,
    site: &Site,
    call: &Call,
    syntax: &dyn Syntax,
    notes: &mut Vec<String>,
) -> Result<(), Error> {
    let config = Config(&call.params);
    let logsdir = config.conf_path("logsdir")?;
    let docs = config.defaultdocs()?;
    let skeleton = if site.suspended {
        let skeleton = config.conf_path("suspendskeleton")?;
        prepare_skeleton(skeleton, notes)?;
        skeleton
    } else {
        ""
    };
    create_dir(logsdir, "logs directory")?;
    let view = View::new(site, logsdir, skeleton, &docs);
    let text = format!(
        "{}{}",
        site.header(syntax.physical_name()),
        syntax.render(&view)
    );
    write_atomically(conf, &text)
}

/// Creates the site: its document root and its virtual host file.
pub fn create(call: &Call, syntax: &dyn Syntax) -> Result<Outcome, Error> {
    let hostname = hostname(call)?;
    let config = Config(&call.params);
    let vhostsdir = config.path("vhostsdir")?;
    let conf = conf_file(vhostsdir, &hostname);
    match fs::symlink_metadata(&conf) {
        Ok(_) => {
            return Err(Error::AlreadyExists(format!(
                "hosting {hostname} already exists: {conf}"
            )));
        }
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => return Err(failed("read", &conf, e)),
    }
    let p = &call.params;
    let docroot = match p.get("docroot").filter(|d| !d.is_empty()) {
        Some(d) => canonical_docroot(d).map_err(|e| Error::invalid("docroot", e))?,
        None => hostname.clone(),
    };
    let ip = param(p, "ip", parse_ip)?.ok_or_else(|| Error::invalid("ip", "missing"))?;
    let port = param(p, "port", parse_port)?.unwrap_or(80);
    let index = param(p, "index", parse_bool)?.unwrap_or(false);
    let dedicatedip = param(p, "dedicatedip", parse_bool)?.unwrap_or(false);
    let status = param(p, "status", parse_status)?.unwrap_or_else(|| "1".into());
    // Everything the file needs is checked before anything is made.
    config.conf_path("logsdir")?;
    let docs = config.defaultdocs()?;
    let home = account_home(call, &hostname)?;
    let site = Site {
        docrootpath: join(&home, &docroot),
        hostname,
        ip,
        port,
        docroot,
        index,
        dedicatedip,
        status,
        suspended: false,
        account: call.parent.as_ref().and_then(|a| a.get("name").cloned()),
        account_pkey: call.parent_pkey.clone(),
    };
    let mut out = Outcome::default();
    prepare_docroot(&site, &docs, &mut out.notes)?;
    create_dir(vhostsdir, "virtual hosts directory")?;
    write_site(&conf, &site, call, syntax, &mut out.notes)?;
    out.notes.push(format!(
        "created hosting {}: {conf}, document root {}",
        site.hostname, site.docrootpath
    ));
    out.set = site.values();
    Ok(out)
}

/// Reads the site's parameters back from its virtual host file.
pub fn get(call: &Call, syntax: &dyn Syntax) -> Result<Outcome, Error> {
    let (_, site) = read_site(call, syntax)?;
    Ok(Outcome {
        set: site.values(),
        notes: Vec::new(),
    })
}

/// Applies the parameters present in `new` and rewrites the file, suspended or not as it
/// was. A new `docroot` is made (with an `index.html` when it has no default document);
/// the old one is left as it is.
pub fn update(call: &Call, new: &Values, syntax: &dyn Syntax) -> Result<Outcome, Error> {
    let (conf, mut site) = read_site(call, syntax)?;
    let mut out = Outcome::default();
    if let Some(ip) = param(new, "ip", parse_ip)? {
        site.ip = ip;
    }
    if let Some(port) = param(new, "port", parse_port)? {
        site.port = port;
    }
    if let Some(index) = param(new, "index", parse_bool)? {
        site.index = index;
    }
    if let Some(dedicatedip) = param(new, "dedicatedip", parse_bool)? {
        site.dedicatedip = dedicatedip;
    }
    if let Some(status) = param(new, "status", parse_status)? {
        site.status = status;
    }
    let docroot = match new.get("docroot").map(String::as_str) {
        None => None,
        Some("") => Some(site.hostname.clone()),
        Some(d) => Some(canonical_docroot(d).map_err(|e| Error::invalid("docroot", e))?),
    };
    let config = Config(&call.params);
    config.conf_path("logsdir")?;
    let docs = config.defaultdocs()?;
    if let Some(docroot) = docroot.filter(|d| *d != site.docroot) {
        let home = account_home(call, &site.hostname)?;
        let old = std::mem::replace(&mut site.docrootpath, join(&home, &docroot));
        site.docroot = docroot;
        prepare_docroot(&site, &docs, &mut out.notes)?;
        out.notes.push(format!(
            "hosting {} now serves {}; {old} is left as it is",
            site.hostname, site.docrootpath
        ));
    }
    if site.account.is_none() {
        site.account = call.parent.as_ref().and_then(|a| a.get("name").cloned());
    }
    if site.account_pkey.is_none() {
        site.account_pkey = call.parent_pkey.clone();
    }
    write_site(&conf, &site, call, syntax, &mut out.notes)?;
    out.notes
        .push(format!("updated hosting {}: {conf}", site.hostname));
    out.set = site.values();
    Ok(out)
}

fn set_suspended(call: &Call, syntax: &dyn Syntax, suspended: bool) -> Result<Outcome, Error> {
    let (conf, mut site) = read_site(call, syntax)?;
    site.suspended = suspended;
    let mut out = Outcome::default();
    write_site(&conf, &site, call, syntax, &mut out.notes)?;
    out.notes.push(format!(
        "{} hosting {}: {conf}",
        if suspended { "suspended" } else { "resumed" },
        site.hostname
    ));
    out.set = site.values();
    Ok(out)
}

/// Serves the suspend skeleton instead of the document root.
pub fn suspend(call: &Call, syntax: &dyn Syntax) -> Result<Outcome, Error> {
    set_suspended(call, syntax, true)
}

/// Serves the document root again.
pub fn resume(call: &Call, syntax: &dyn Syntax) -> Result<Outcome, Error> {
    set_suspended(call, syntax, false)
}

/// Removes the virtual host file and, with `removecontent`, the document root: unless
/// another site of the same provider serves it (or a directory inside or around it), or it
/// is not `<account home>/<docroot>` as the file records it.
pub fn delete(call: &Call, syntax: &dyn Syntax) -> Result<Outcome, Error> {
    let (conf, site) = read_site(call, syntax)?;
    let config = Config(&call.params);
    let remove_content = config.removecontent()?;
    let mut out = Outcome::default();
    let keep = if remove_content {
        content_to_keep(&site, call, syntax, &mut out.notes)?
    } else {
        None
    };
    match fs::remove_file(&conf) {
        Ok(()) => {}
        Err(e) if e.kind() == io::ErrorKind::NotFound => {
            return Err(Error::NotFound(format!(
                "hosting {} does not exist: there is no {conf}",
                site.hostname
            )));
        }
        Err(e) => return Err(failed("remove", &conf, e)),
    }
    out.notes
        .push(format!("deleted hosting {}: {conf}", site.hostname));
    if !remove_content {
        return Ok(out);
    }
    if let Some(reason) = keep {
        out.notes.push(format!(
            "kept the document root {}: {reason}",
            site.docrootpath
        ));
        return Ok(out);
    }
    match fs::remove_dir_all(&site.docrootpath) {
        Ok(()) => out
            .notes
            .push(format!("removed the document root {}", site.docrootpath)),
        Err(e) if e.kind() == io::ErrorKind::NotFound => {}
        Err(e) => {
            return Err(Error::Failed(format!(
                "removed {conf} but cannot remove the document root {}: {e}",
                site.docrootpath
            )));
        }
    }
    Ok(out)
}

/// Why the document root of `site` must not be removed, if it must not.
fn content_to_keep(
    site: &Site,
    call: &Call,
    syntax: &dyn Syntax,
    notes: &mut Vec<String>,
) -> Result<Option<String>, Error> {
    let root = &site.docrootpath;
    let home = root
        .strip_suffix(&site.docroot)
        .and_then(|h| h.strip_suffix('/'))
        .filter(|h| !h.is_empty());
    let Some(home) = home else {
        return Ok(Some(format!(
            "it is not a directory inside a home ending with {}",
            site.docroot
        )));
    };
    if let Ok(current) = account_home(call, &site.hostname)
        && current != home
    {
        return Ok(Some(format!(
            "it is not inside the account's home {current}"
        )));
    }
    let vhostsdir = Config(&call.params).path("vhostsdir")?;
    let within = |a: &str, b: &str| a == b || a.starts_with(&format!("{b}/"));
    for other in scan(vhostsdir, syntax.physical_name(), notes)? {
        if other.hostname != site.hostname
            && (within(&other.docrootpath, root) || within(root, &other.docrootpath))
        {
            return Ok(Some(format!(
                "hosting {} serves {}",
                other.hostname, other.docrootpath
            )));
        }
    }
    Ok(None)
}

/// The host names of the sites this provider wrote in `vhostsdir`; with `parent_pkey`, only
/// those of that account (and those whose file does not say which account they belong to).
pub fn enumerate(
    parent_pkey: Option<&PKey>,
    config: &Values,
    syntax: &dyn Syntax,
) -> Result<Listing, Error> {
    let vhostsdir = Config(config).path("vhostsdir")?;
    let mut listing = Listing::default();
    for site in scan(vhostsdir, syntax.physical_name(), &mut listing.notes)? {
        if let (Some(want), Some(have)) = (parent_pkey, &site.account_pkey)
            && want != have
        {
            continue;
        }
        listing.hostnames.push(site.hostname);
    }
    Ok(listing)
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;

    use super::*;
    use crate::site::View;

    /// A syntax that writes what it is given, one `name value` line each.
    struct Plain(&'static str);

    impl Syntax for Plain {
        fn physical_name(&self) -> &'static str {
            self.0
        }

        fn render(&self, v: &View<'_>) -> String {
            format!(
                "listen {}\nroot {}\nautoindex {}\nsuspended {}\nindex {}\naccess {}\nerror {}\n",
                v.listen,
                v.root,
                v.autoindex,
                v.suspended,
                v.index_files.join(" "),
                v.access_log,
                v.error_log
            )
        }
    }

    const NGINX: Plain = Plain("nginx_vhost");

    /// A scratch directory, removed when dropped.
    struct Scratch(PathBuf);

    impl Scratch {
        fn new(name: &str) -> Self {
            let dir =
                std::env::temp_dir().join(format!("hosting-common-{}-{name}", std::process::id()));
            let _ = fs::remove_dir_all(&dir);
            fs::create_dir_all(&dir).unwrap();
            Scratch(dir)
        }

        fn path(&self, rel: &str) -> String {
            join(&self.0.to_string_lossy(), rel)
        }
    }

    impl Drop for Scratch {
        fn drop(&mut self) {
            let _ = fs::remove_dir_all(&self.0);
        }
    }

    fn values(pairs: &[(&str, &str)]) -> Values {
        pairs
            .iter()
            .map(|(k, v)| (k.to_string(), v.to_string()))
            .collect()
    }

    /// A create call for `hostname` under account `alice` (physical key 1), the config
    /// attributes in `s`, and `extra` instance parameters.
    fn call(s: &Scratch, hostname: &str, extra: &[(&str, &str)]) -> Call {
        let mut params = values(&[
            ("hostname", hostname),
            ("vhostsdir", &s.path("sites")),
            ("logsdir", &s.path("logs")),
            ("suspendskeleton", &s.path("suspended")),
            ("removecontent", "false"),
            ("defaultdocs", "index.html, index.htm"),
            ("homes", &s.path("homes")),
        ]);
        params.extend(values(extra));
        Call {
            params,
            lkey: hostname.to_string(),
            parent: Some(values(&[
                ("name", "alice"),
                ("home", &s.path("homes/alice")),
                ("homes", &s.path("homes")),
            ])),
            parent_pkey: Some(PKey::Num(1)),
        }
    }

    fn read(path: &str) -> String {
        fs::read_to_string(path).unwrap()
    }

    #[test]
    fn the_six_operations() {
        let s = Scratch::new("six");
        let c = call(&s, "example.com", &[("ip", "192.0.2.10"), ("port", "8080")]);
        let created = create(&c, &NGINX).unwrap();
        let root = s.path("homes/alice/example.com");
        assert_eq!(created.set["docrootpath"], root);
        assert_eq!(created.set["docroot"], "example.com");
        assert_eq!(created.set["status"], "1");
        assert!(read(&join(&root, "index.html")).contains("<h1>example.com</h1>"));
        let conf = s.path("sites/example.com.conf");
        let text = read(&conf);
        assert!(
            text.starts_with("# Managed by paasm (nginx_vhost)"),
            "{text}"
        );
        assert!(text.contains("# paasm: account-pkey=num:1\nlisten 192.0.2.10:8080\n"));
        assert!(text.contains(&format!("root {root}\n")));
        assert!(text.contains(&format!(
            "access {}\n",
            s.path("logs/example.com.access.log")
        )));
        assert!(Path::new(&s.path("logs")).is_dir());

        assert!(matches!(
            create(&c, &NGINX),
            Err(Error::AlreadyExists(m)) if m.contains("example.com.conf")
        ));

        // Get answers from the file alone: a collection with nothing but the key and config.
        let mut bare = call(&s, "Example.COM", &[]);
        bare.params.remove("hostname");
        bare.parent = None;
        let got = get(&bare, &NGINX).unwrap();
        assert_eq!(got.set, created.set);

        let updated = update(&c, &values(&[("port", "81"), ("index", "true")]), &NGINX).unwrap();
        assert_eq!(updated.set["port"], "81");
        assert_eq!(updated.set["index"], "true");
        assert!(read(&conf).contains("listen 192.0.2.10:81\nroot"));
        assert!(read(&conf).contains("autoindex true"));

        let suspended = suspend(&c, &NGINX).unwrap();
        assert_eq!(suspended.set, updated.set);
        let text = read(&conf);
        assert!(text.contains("# paasm: suspended=true"));
        assert!(text.contains(&format!("root {}\n", s.path("suspended"))));
        assert!(text.contains("autoindex false"), "never while suspended");
        assert!(read(&s.path("suspended/index.html")).contains("suspended"));
        // An update keeps the suspension.
        update(&c, &values(&[("status", "3")]), &NGINX).unwrap();
        assert!(read(&conf).contains("suspended true"));
        assert_eq!(get(&c, &NGINX).unwrap().set["status"], "3");

        resume(&c, &NGINX).unwrap();
        let text = read(&conf);
        assert!(text.contains("# paasm: suspended=false"));
        assert!(text.contains(&format!("root {root}\n")));
        assert!(text.contains("autoindex true"));

        delete(&c, &NGINX).unwrap();
        assert!(!Path::new(&conf).exists());
        assert!(
            Path::new(&root).is_dir(),
            "content stays without removecontent"
        );
        for result in [
            get(&c, &NGINX),
            update(&c, &values(&[("port", "82")]), &NGINX),
            suspend(&c, &NGINX),
            resume(&c, &NGINX),
            delete(&c, &NGINX),
        ] {
            assert!(matches!(result, Err(Error::NotFound(_))), "{result:?}");
        }
        // Nothing but the site's own files was written.
        let leftovers: Vec<String> = fs::read_dir(s.path("sites"))
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert!(leftovers.is_empty(), "{leftovers:?}");
    }

    #[test]
    fn the_docroot_lies_in_the_home_and_keeps_existing_content() {
        let s = Scratch::new("docroot");
        fs::create_dir_all(s.path("homes/alice/www")).unwrap();
        fs::write(s.path("homes/alice/www/index.htm"), "mine").unwrap();
        let c = call(&s, "a.example", &[("ip", "::1"), ("docroot", "www/")]);
        let created = create(&c, &NGINX).unwrap();
        assert_eq!(created.set["docroot"], "www");
        assert_eq!(created.set["docrootpath"], s.path("homes/alice/www"));
        assert!(!Path::new(&s.path("homes/alice/www/index.html")).exists());
        assert!(read(&s.path("sites/a.example.conf")).contains("listen [::1]:80\n"));

        // Without the parent's home: its homes attribute and name.
        let mut c = call(&s, "b.example", &[("ip", "192.0.2.1")]);
        c.parent.as_mut().unwrap().remove("home");
        let created = create(&c, &NGINX).unwrap();
        assert_eq!(created.set["docrootpath"], s.path("homes/alice/b.example"));

        // Moving the docroot makes the new one and leaves the old.
        let moved = update(&c, &values(&[("docroot", "shop")]), &NGINX).unwrap();
        assert_eq!(moved.set["docrootpath"], s.path("homes/alice/shop"));
        assert!(Path::new(&s.path("homes/alice/shop/index.html")).exists());
        assert!(Path::new(&s.path("homes/alice/b.example/index.html")).exists());

        for bad in ["../bob", "/etc", "a b", "."] {
            let c = call(&s, "c.example", &[("ip", "192.0.2.1"), ("docroot", bad)]);
            assert!(
                matches!(create(&c, &NGINX), Err(Error::InvalidParameter { ref name, .. }) if name == "docroot"),
                "{bad:?}"
            );
        }
        let mut orphan = call(&s, "c.example", &[("ip", "192.0.2.1")]);
        orphan.parent = None;
        assert!(matches!(create(&orphan, &NGINX), Err(Error::Failed(_))));
        assert!(!Path::new(&s.path("sites/c.example.conf")).exists());
    }

    #[test]
    fn bad_input_is_named() {
        let s = Scratch::new("invalid");
        let cases: &[(&[(&str, &str)], &str)] = &[
            (&[], "ip"),
            (&[("ip", "999.1.1.1")], "ip"),
            (&[("ip", "192.0.2.1"), ("port", "0")], "port"),
            (&[("ip", "192.0.2.1"), ("port", "70000")], "port"),
            (&[("ip", "192.0.2.1"), ("index", "perhaps")], "index"),
            (&[("ip", "192.0.2.1"), ("status", "flying")], "status"),
            (&[("ip", "192.0.2.1"), ("logsdir", "logs")], "logsdir"),
            (&[("ip", "192.0.2.1"), ("logsdir", "/var/$log")], "logsdir"),
            (
                &[("ip", "192.0.2.1"), ("defaultdocs", "a;b")],
                "defaultdocs",
            ),
        ];
        for (extra, param) in cases {
            let err = create(&call(&s, "x.example", extra), &NGINX).unwrap_err();
            assert!(
                matches!(&err, Error::InvalidParameter { name, .. } if name == param),
                "{extra:?}: {err:?}"
            );
        }
        let err = create(&call(&s, "not a domain!", &[("ip", "192.0.2.1")]), &NGINX).unwrap_err();
        assert!(matches!(err, Error::InvalidParameter { ref name, .. } if name == "hostname"));
        let mut c = call(&s, "x.example", &[("ip", "192.0.2.1")]);
        c.params.remove("vhostsdir");
        let err = create(&c, &NGINX).unwrap_err();
        assert!(matches!(err, Error::InvalidParameter { ref name, .. } if name == "vhostsdir"));
        assert!(!Path::new(&s.path("sites")).exists(), "nothing was written");
        assert!(!Path::new(&s.path("homes")).exists(), "nothing was written");
    }

    #[test]
    fn files_of_other_writers_are_left_alone() {
        let s = Scratch::new("foreign");
        fs::create_dir_all(s.path("sites")).unwrap();
        fs::write(s.path("sites/hand.example.conf"), "server { }\n").unwrap();
        let c = call(&s, "hand.example", &[("ip", "192.0.2.1")]);
        assert!(matches!(create(&c, &NGINX), Err(Error::AlreadyExists(_))));
        for result in [get(&c, &NGINX), delete(&c, &NGINX)] {
            assert!(
                matches!(&result, Err(Error::Failed(m)) if m.contains("no paasm header")),
                "{result:?}"
            );
        }
        assert!(Path::new(&s.path("sites/hand.example.conf")).exists());
        // Apache's files are not nginx's.
        create(
            &call(&s, "a.example", &[("ip", "192.0.2.1")]),
            &Plain("apache_vhost"),
        )
        .unwrap();
        let err = get(&call(&s, "a.example", &[]), &NGINX).unwrap_err();
        assert!(err.to_string().contains("written by apache_vhost"), "{err}");
    }

    #[test]
    fn enumerate_lists_this_providers_sites_of_the_account() {
        let s = Scratch::new("enumerate");
        let config = call(&s, "x", &[]).params;
        assert!(
            enumerate(None, &config, &NGINX)
                .unwrap()
                .hostnames
                .is_empty()
        );
        create(&call(&s, "b.example", &[("ip", "192.0.2.1")]), &NGINX).unwrap();
        create(&call(&s, "a.example", &[("ip", "192.0.2.1")]), &NGINX).unwrap();
        let mut bobs = call(&s, "bob.example", &[("ip", "192.0.2.1")]);
        bobs.parent_pkey = Some(PKey::Num(2));
        create(&bobs, &NGINX).unwrap();
        create(
            &call(&s, "apache.example", &[("ip", "192.0.2.1")]),
            &Plain("apache_vhost"),
        )
        .unwrap();
        fs::write(s.path("sites/hand.example.conf"), "server { }\n").unwrap();
        fs::write(s.path("sites/notes.txt"), "").unwrap();
        fs::write(
            s.path("sites/broken.example.conf"),
            "# paasm: provider=nginx_vhost\n# paasm: format=1\n",
        )
        .unwrap();

        let all = enumerate(None, &config, &NGINX).unwrap();
        assert_eq!(all.hostnames, ["a.example", "b.example", "bob.example"]);
        assert_eq!(all.notes.len(), 1, "{:?}", all.notes);
        assert!(all.notes[0].contains("broken.example.conf"));
        let alices = enumerate(Some(&PKey::Num(1)), &config, &NGINX).unwrap();
        assert_eq!(alices.hostnames, ["a.example", "b.example"]);
        let bob = enumerate(Some(&PKey::Num(2)), &config, &NGINX).unwrap();
        assert_eq!(bob.hostnames, ["bob.example"]);
    }

    #[test]
    fn removecontent_removes_only_an_unshared_docroot() {
        let s = Scratch::new("remove");
        let rm = [("removecontent", "true")];
        let mut one = call(
            &s,
            "one.example",
            &[("ip", "192.0.2.1"), ("docroot", "shared")],
        );
        one.params.extend(values(&rm));
        let mut two = call(
            &s,
            "two.example",
            &[("ip", "192.0.2.1"), ("docroot", "shared")],
        );
        two.params.extend(values(&rm));
        let mut own = call(&s, "own.example", &[("ip", "192.0.2.1")]);
        own.params.extend(values(&rm));
        for c in [&one, &two, &own] {
            create(c, &NGINX).unwrap();
        }
        let deleted = delete(&one, &NGINX).unwrap();
        assert!(
            deleted
                .notes
                .iter()
                .any(|n| n.contains("hosting two.example serves")),
            "{deleted:?}"
        );
        assert!(Path::new(&s.path("homes/alice/shared")).is_dir());
        delete(&two, &NGINX).unwrap();
        assert!(!Path::new(&s.path("homes/alice/shared")).exists());
        delete(&own, &NGINX).unwrap();
        assert!(!Path::new(&s.path("homes/alice/own.example")).exists());
        assert!(Path::new(&s.path("homes/alice")).is_dir(), "the home stays");
    }

    #[test]
    fn a_file_is_never_half_written() {
        let s = Scratch::new("atomic");
        let path = s.path("x.conf");
        write_atomically(&path, "one\n").unwrap();
        write_atomically(&path, "two\n").unwrap();
        assert_eq!(read(&path), "two\n");
        let names: Vec<String> = fs::read_dir(&s.0)
            .unwrap()
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect();
        assert_eq!(names, ["x.conf"]);
        let err = write_atomically(&s.path("missing/x.conf"), "x").unwrap_err();
        assert!(
            err.to_string().contains("missing/.x.conf.paasm-tmp"),
            "{err}"
        );
    }
}
