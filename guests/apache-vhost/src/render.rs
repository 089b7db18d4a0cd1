//! The Apache 2.4 syntax of one site: a `<VirtualHost>` section, for inclusion from the
//! server configuration (`IncludeOptional <vhostsdir>/*.conf`).
//!
//! It uses directives of the core and of the modules every stock Apache 2.4 loads:
//! mod_dir (`DirectoryIndex`, `FallbackResource`), mod_authz_core (`Require`) and
//! mod_log_config (`CustomLog`, with the `combined` format the stock configuration defines).

use hosting_common::{Syntax, View};

/// The Apache renderer.
pub struct Apache;

/// A path as an Apache string (the site rules keep `"`, `\` and `$` out of paths).
fn quoted(path: &str) -> String {
    format!("\"{path}\"")
}

impl Syntax for Apache {
    fn physical_name(&self) -> &'static str {
        "apache_vhost"
    }

    fn render(&self, v: &View<'_>) -> String {
        let root = quoted(v.root);
        let mut out = format!("<VirtualHost {}>\n", v.listen);
        out.push_str(&format!("    ServerName {}\n", v.site.hostname));
        out.push_str(&format!("    DocumentRoot {root}\n"));
        out.push_str(&format!("    <Directory {root}>\n"));
        out.push_str(&format!(
            "        Options {}Indexes\n",
            if v.autoindex { "+" } else { "-" }
        ));
        out.push_str("        Require all granted\n");
        out.push_str("    </Directory>\n");
        if !v.index_files.is_empty() {
            out.push_str(&format!("    DirectoryIndex {}\n", v.index_files.join(" ")));
        }
        if v.suspended {
            out.push_str(
                "    # Suspended: every path answers the suspend skeleton's page.\n    \
                 FallbackResource /index.html\n",
            );
        }
        out.push_str(&format!("    ErrorLog {}\n", quoted(&v.error_log)));
        out.push_str(&format!(
            "    CustomLog {} combined\n",
            quoted(&v.access_log)
        ));
        out.push_str("</VirtualHost>\n");
        out
    }
}

#[cfg(test)]
mod tests {
    use hosting_common::Site;

    use super::*;

    fn site() -> Site {
        Site::example()
    }

    #[test]
    fn a_virtual_host() {
        let docs = vec!["index.html".to_string(), "index.htm".to_string()];
        let s = site();
        let v = View::new(&s, "/var/log/web", "/srv/suspended", &docs);
        assert_eq!(
            Apache.render(&v),
            "<VirtualHost 192.0.2.10:80>\n\
             \x20   ServerName example.com\n\
             \x20   DocumentRoot \"/srv/homes/alice/example.com\"\n\
             \x20   <Directory \"/srv/homes/alice/example.com\">\n\
             \x20       Options -Indexes\n\
             \x20       Require all granted\n\
             \x20   </Directory>\n\
             \x20   DirectoryIndex index.html index.htm\n\
             \x20   ErrorLog \"/var/log/web/example.com.error.log\"\n\
             \x20   CustomLog \"/var/log/web/example.com.access.log\" combined\n\
             </VirtualHost>\n"
        );
    }

    #[test]
    fn suspended_ipv6_and_no_index() {
        let mut s = site();
        s.ip = "2001:db8::1".parse().unwrap();
        s.port = 8080;
        s.index = true;
        let text = Apache.render(&View::new(&s, "/l", "/srv/suspended", &[]));
        assert!(
            text.starts_with("<VirtualHost [2001:db8::1]:8080>\n"),
            "{text}"
        );
        assert!(text.contains("Options +Indexes\n"));
        assert!(!text.contains("DirectoryIndex"), "{text}");
        s.suspended = true;
        let text = Apache.render(&View::new(&s, "/l", "/srv/suspended", &[]));
        assert!(text.contains("DocumentRoot \"/srv/suspended\"\n"));
        assert!(text.contains("<Directory \"/srv/suspended\">\n"));
        assert!(text.contains("Options -Indexes\n"));
        assert!(text.contains("FallbackResource /index.html\n"));
    }
}
