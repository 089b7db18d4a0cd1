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
//! - [`hosting_provider!`]: the WIT glue between a provider crate's generated bindings and
//!   [`ops`], expanded in each provider crate (so this crate itself needs no WIT).
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

/// The WIT side of a `hosting` provider, the same for every implementation: the glue between
/// the `paasm:resource/provider` world's generated bindings and [`ops`]. Invoke it at the
/// root of a provider crate, after its `wit_bindgen::generate!` (which must generate
/// `paasm:platform/parameters` and map the other platform interfaces onto the SDK's), with
/// the type to export, its [`Syntax`] value and its description:
///
/// ```ignore
/// hosting_common::hosting_provider!(NginxVhost, render::Nginx, "nginx virtual web host");
/// ```
#[macro_export]
macro_rules! hosting_provider {
    ($provider:ident, $syntax:expr, $description:expr) => {
        use exports::paasm::resource::operations::Guest;
        use paasm::platform::parameters::Parameters;
        use paasm::resource::types::{
            Choice, Description, Error, InvalidParameter, KeyKind, Prop, PropType,
        };
        use paasm_sdk::bindings::paasm::platform::types::Key;
        use $crate::{self as common, Syntax, ops, schema};

        struct $provider;

        /// Every value of a collection.
        fn values(p: &Parameters) -> common::Values {
            p.names()
                .into_iter()
                .filter_map(|name| p.get(&name).map(|value| (name, value)))
                .collect()
        }

        fn pkey(key: Key) -> common::PKey {
            match key {
                Key::Num(n) => common::PKey::Num(n),
                Key::Str(s) => common::PKey::Str(s),
            }
        }

        /// The plain data of a call on `params`.
        fn call(params: &Parameters) -> ops::Call {
            let parent = params.parent();
            ops::Call {
                params: values(params),
                lkey: match params.lkey() {
                    Key::Str(s) => s,
                    Key::Num(n) => n.to_string(),
                },
                parent: parent.as_ref().map(values),
                parent_pkey: parent.and_then(|p| p.pkey()).map(pkey),
            }
        }

        fn error(e: common::Error) -> Error {
            match e {
                common::Error::AlreadyExists(m) => Error::AlreadyExists(m),
                common::Error::NotFound(m) => Error::NotFound(m),
                common::Error::InvalidParameter { name, message } => {
                    Error::InvalidParameter(InvalidParameter { name, message })
                }
                common::Error::Failed(m) => Error::Failed(m),
            }
        }

        /// Sets what the operation answered in `params` and logs what it did.
        fn finish(
            params: &Parameters,
            outcome: Result<ops::Outcome, common::Error>,
        ) -> Result<(), Error> {
            let outcome = outcome.map_err(error)?;
            for (name, value) in &outcome.set {
                params.set(name, value);
            }
            for note in &outcome.notes {
                paasm_sdk::info!("{note}");
            }
            Ok(())
        }

        fn props(schema: &[schema::Prop]) -> Vec<Prop> {
            schema
                .iter()
                .map(|p| Prop {
                    name: p.name.into(),
                    description: p.description.into(),
                    type_: match p.ty {
                        schema::PropType::Str => PropType::Str,
                        schema::PropType::Unum => PropType::Unum,
                        schema::PropType::Bool => PropType::Bool,
                        schema::PropType::Select => PropType::Select,
                        schema::PropType::Path => PropType::Path,
                        schema::PropType::Ip => PropType::Ip,
                        schema::PropType::Domain => PropType::Domain,
                    },
                    default: p.default.map(str::to_string),
                    key: p.key,
                    optional: p.optional,
                    readonly: p.readonly,
                    choices: p
                        .choices
                        .iter()
                        .map(|c| Choice {
                            name: c.name.into(),
                            value: c.value.into(),
                            description: c.description.into(),
                        })
                        .collect(),
                })
                .collect()
        }

        impl Guest for $provider {
            fn describe() -> Description {
                Description {
                    resource_name: schema::RESOURCE_NAME.into(),
                    physical_name: $syntax.physical_name().into(),
                    lkey_name: schema::LKEY_NAME.into(),
                    lkey_kind: KeyKind::Str,
                    resource_description: $description.into(),
                    parent_name: Some(schema::PARENT_NAME.into()),
                    managed_pkey: false,
                    instance_schema: props(schema::INSTANCE_SCHEMA),
                    config_schema: props(schema::CONFIG_SCHEMA),
                    exclusive: false,
                    offline: false,
                    ignore_exists: false,
                    cacheable: true,
                    case_sensitive: false,
                    listable: true,
                }
            }

            fn create(params: &Parameters) -> Result<(), Error> {
                finish(params, ops::create(&call(params), &$syntax))
            }

            fn get(params: &Parameters) -> Result<(), Error> {
                finish(params, ops::get(&call(params), &$syntax))
            }

            fn update(params: &Parameters, new_params: &Parameters) -> Result<(), Error> {
                finish(
                    params,
                    ops::update(&call(params), &values(new_params), &$syntax),
                )
            }

            fn delete(params: &Parameters) -> Result<(), Error> {
                finish(params, ops::delete(&call(params), &$syntax))
            }

            fn suspend(params: &Parameters) -> Result<(), Error> {
                finish(params, ops::suspend(&call(params), &$syntax))
            }

            fn resume(params: &Parameters) -> Result<(), Error> {
                finish(params, ops::resume(&call(params), &$syntax))
            }

            fn enumerate(parent_pkey: Option<Key>, config: &Parameters) -> Result<Vec<Key>, Error> {
                let listing =
                    ops::enumerate(parent_pkey.map(pkey).as_ref(), &values(config), &$syntax)
                        .map_err(error)?;
                for note in &listing.notes {
                    paasm_sdk::warn!("{note}");
                }
                Ok(listing.hostnames.into_iter().map(Key::Str).collect())
            }
        }

        export!($provider);
    };
}
