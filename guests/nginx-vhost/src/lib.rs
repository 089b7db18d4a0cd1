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

hosting_common::hosting_provider!(NginxVhost, render::Nginx, "nginx virtual web host");
