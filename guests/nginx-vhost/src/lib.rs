//! The `nginx_vhost` implementation of the logical resource `hosting`: one nginx virtual
//! host (a `server { }` block) per site, child of an `account`, keyed by its host name.
//!
//! It writes, for site `<hostname>` of the account whose home is `<home>`:
//!
//! - `<vhostsdir>/<hostname>.conf`: a `# paasm: name=value` header recording every instance
//!   parameter (see `hosting_common`), then
//!
//!   ```text
//!   server {
//!       listen <ip>:<port>;                  # [<ip>]:<port> for IPv6
//!       server_name <hostname>;
//!       root "<home>/<docroot>";             # "<suspendskeleton>" while suspended
//!       index <defaultdocs, space separated>;
//!       autoindex on|off;                    # the index parameter; off while suspended
//!       access_log "<logsdir>/<hostname>.access.log";
//!       error_log "<logsdir>/<hostname>.error.log";
//!       # while suspended only: every path answers the skeleton's index.html
//!       location / {
//!           try_files $uri /index.html =404;
//!       }
//!   }
//!   ```
//!
//!   for nginx to include from its `http { }` block (`include <vhostsdir>/*.conf;`);
//! - the document root `<home>/<docroot>` (default docroot: the host name), with an
//!   `index.html` naming the site when it has none of the default documents;
//! - the suspend skeleton `<suspendskeleton>` with an `index.html`, when missing, on suspend.
//!
//! `delete` removes the file and, with `removecontent`, the document root (not when another
//! site serves it). `get` reads the header back; `enumerate` lists the sites of the parent
//! account whose files this implementation wrote. The provider reloads nothing: the
//! operator's nginx picks the files up on its next reload.

wit_bindgen::generate!({
    path: ["../../wit/platform", "../../wit/resource"],
    world: "paasm:%resource/provider",
    with: {
        "paasm:platform/types@0.1.0": paasm_sdk::bindings::paasm::platform::types,
        "paasm:platform/log@0.1.0": paasm_sdk::bindings::paasm::platform::log,
        "paasm:platform/config@0.1.0": paasm_sdk::bindings::paasm::platform::config,
        "paasm:platform/state@0.1.0": paasm_sdk::bindings::paasm::platform::state,
        "paasm:platform/parameters@0.1.0": generate,
    },
});

mod render;

use exports::paasm::resource::operations::Guest;
use hosting_common::{self as common, Syntax, ops, schema};
use paasm::platform::parameters::Parameters;
use paasm::resource::types::{
    Choice, Description, Error, InvalidParameter, KeyKind, Prop, PropType,
};
use paasm_sdk::bindings::paasm::platform::types::Key;

use render::Nginx;

struct NginxVhost;

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
fn finish(params: &Parameters, outcome: Result<ops::Outcome, common::Error>) -> Result<(), Error> {
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

impl Guest for NginxVhost {
    fn describe() -> Description {
        Description {
            resource_name: schema::RESOURCE_NAME.into(),
            physical_name: Nginx.physical_name().into(),
            lkey_name: schema::LKEY_NAME.into(),
            lkey_kind: KeyKind::Str,
            resource_description: "nginx virtual web host".into(),
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
        finish(params, ops::create(&call(params), &Nginx))
    }

    fn get(params: &Parameters) -> Result<(), Error> {
        finish(params, ops::get(&call(params), &Nginx))
    }

    fn update(params: &Parameters, new_params: &Parameters) -> Result<(), Error> {
        finish(
            params,
            ops::update(&call(params), &values(new_params), &Nginx),
        )
    }

    fn delete(params: &Parameters) -> Result<(), Error> {
        finish(params, ops::delete(&call(params), &Nginx))
    }

    fn suspend(params: &Parameters) -> Result<(), Error> {
        finish(params, ops::suspend(&call(params), &Nginx))
    }

    fn resume(params: &Parameters) -> Result<(), Error> {
        finish(params, ops::resume(&call(params), &Nginx))
    }

    fn enumerate(parent_pkey: Option<Key>, config: &Parameters) -> Result<Vec<Key>, Error> {
        let listing = ops::enumerate(parent_pkey.map(pkey).as_ref(), &values(config), &Nginx)
            .map_err(error)?;
        for note in &listing.notes {
            paasm_sdk::warn!("{note}");
        }
        Ok(listing.hostnames.into_iter().map(Key::Str).collect())
    }
}

export!(NginxVhost);
