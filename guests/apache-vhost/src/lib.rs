//! The `apache_vhost` implementation of the logical resource `hosting`: one Apache 2.4
//! virtual host (a `<VirtualHost>` section) per site, child of an `account`, keyed by its
//! host name. It behaves exactly like `nginx_vhost` (the same schemas, the same rules, the
//! same header): only the syntax of the file differs, so switching `hosting` from one to the
//! other is a matter of configuration.
//!
//! It writes, for site `<hostname>` of the account whose home is `<home>`:
//!
//! - `<vhostsdir>/<hostname>.conf`: a `# paasm: name=value` header recording every instance
//!   parameter (see `hosting_common`), then
//!
//!   ```text
//!   <VirtualHost <ip>:<port>>                # [<ip>]:<port> for IPv6
//!       ServerName <hostname>
//!       DocumentRoot "<home>/<docroot>"      # "<suspendskeleton>" while suspended
//!       <Directory "<home>/<docroot>">       # the same directory as DocumentRoot
//!           Options +Indexes|-Indexes        # the index parameter; -Indexes while suspended
//!           Require all granted
//!       </Directory>
//!       DirectoryIndex <defaultdocs, space separated>
//!       FallbackResource /index.html         # while suspended only
//!       ErrorLog "<logsdir>/<hostname>.error.log"
//!       CustomLog "<logsdir>/<hostname>.access.log" combined
//!   </VirtualHost>
//!   ```
//!
//!   for Apache to include from its server configuration (`IncludeOptional
//!   <vhostsdir>/*.conf`, with a `Listen` for every port the sites use);
//! - the document root `<home>/<docroot>` (default docroot: the host name), with an
//!   `index.html` naming the site when it has none of the default documents;
//! - the suspend skeleton `<suspendskeleton>` with an `index.html`, when missing, on suspend.
//!
//! `delete` removes the file and, with `removecontent`, the document root (not when another
//! site serves it). `get` reads the header back; `enumerate` lists the sites of the parent
//! account whose files this implementation wrote. The provider reloads nothing: the
//! operator's Apache picks the files up on its next graceful restart.

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

hosting_common::hosting_provider!(ApacheVhost, render::Apache, "apache 2.4 virtual web host");
