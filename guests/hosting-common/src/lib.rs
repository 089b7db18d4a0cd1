//! What the two implementations of the logical resource `hosting` share: `nginx_vhost`
//! (`guests/nginx-vhost`) and `apache_vhost` (`guests/apache-vhost`). Each of them only
//! renders a [`View`] in its web server's syntax ([`Syntax`]); everything else lives here,
//! on plain data, without WIT, so that it builds and is tested on any target:
//!
//! - [`schema`]: the resource's attributes and its instance and config schemas, as plain
//!   data each provider turns into its WIT `description`;
//! - [`site`]: the [`Site`] a virtual host file describes, the rules for its values (host
//!   name, document root, address, port, status, default documents, paths that go into a
//!   web server configuration) and the [`View`] a renderer gets;
//! - [`header`]: the `# paasm: name=value` comment header at the top of every file written,
//!   which records the instance parameters so that `get` never parses web server syntax;
//! - [`ops`]: create, get, update, delete, suspend, resume and enumerate over the file
//!   system (`std::fs`), given a [`Call`] (the collection's values, the logical key, the
//!   parent's values and physical key) and answering the values to set.
//!
//! # Files
//!
//! One file per site, `<vhostsdir>/<hostname>.conf`:
//!
//! ```text
//! # Managed by paasm (nginx_vhost): changes to this file are overwritten.
//! # paasm: provider=nginx_vhost
//! # paasm: format=1
//! # paasm: hostname=example.com
//! # paasm: ip=192.0.2.10
//! # paasm: port=80
//! # paasm: docroot=example.com
//! # paasm: docrootpath=/srv/homes/alice/example.com
//! # paasm: index=false
//! # paasm: dedicatedip=false
//! # paasm: status=1
//! # paasm: suspended=false
//! # paasm: account=alice
//! # paasm: account-pkey=num:1
//! <the web server's configuration of the site>
//! ```
//!
//! Besides it, `create` (and an `update` that changes `docroot`) makes the document root
//! directory `<account home>/<docroot>` and writes an `index.html` naming the site into it
//! when it has none of the default documents; `suspend` makes the suspend skeleton
//! directory, with an `index.html`, when it is missing; `delete` removes the file and, with
//! `removecontent`, the document root.

pub mod header;
pub mod ops;
pub mod schema;
pub mod site;

use std::collections::BTreeMap;
use std::fmt;

pub use ops::{Call, Listing, Outcome};
pub use site::{PKey, Site, View};

/// Parameter values by name, as text (the form the host's collections hold).
pub type Values = BTreeMap<String, String>;

/// How an operation failed; each provider maps it onto its WIT `error`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Error {
    /// The site exists already (create only).
    AlreadyExists(String),
    /// The site does not exist (every operation but create).
    NotFound(String),
    /// A parameter or config attribute the caller (or operator) can fix.
    InvalidParameter { name: String, message: String },
    /// Anything else.
    Failed(String),
}

impl Error {
    /// An invalid-parameter error for `name`.
    pub fn invalid(name: &str, message: impl Into<String>) -> Self {
        Error::InvalidParameter {
            name: name.to_string(),
            message: message.into(),
        }
    }
}

impl fmt::Display for Error {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Error::AlreadyExists(m) | Error::NotFound(m) | Error::Failed(m) => f.write_str(m),
            Error::InvalidParameter { name, message } => write!(f, "{name}: {message}"),
        }
    }
}

impl std::error::Error for Error {}

/// A web server's syntax for one site.
pub trait Syntax {
    /// The implementation's physical name (`nginx_vhost`), recorded in the header: a file
    /// is only ever read back, changed or removed by the implementation that wrote it.
    fn physical_name(&self) -> &'static str;

    /// The configuration of the site, after the header: complete, ending with a newline.
    fn render(&self, view: &View<'_>) -> String;
}
