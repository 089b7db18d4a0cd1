//! The nginx syntax of one site: a `server { }` block, for inclusion from nginx's `http { }`
//! block (`include <vhostsdir>/*.conf;`).

use hosting_common::{Syntax, View};

/// The nginx renderer.
pub struct Nginx;

/// A path as an nginx string (the site rules keep `"`, `\` and `$` out of paths).
fn quoted(path: &str) -> String {
    format!("\"{path}\"")
}

impl Syntax for Nginx {
    fn physical_name(&self) -> &'static str {
        "nginx_vhost"
    }

    fn render(&self, v: &View<'_>) -> String {
        let mut out = String::from("server {\n");
        out.push_str(&format!("    listen {};\n", v.listen));
        out.push_str(&format!("    server_name {};\n", v.site.hostname));
        out.push_str(&format!("    root {};\n", quoted(v.root)));
        if !v.index_files.is_empty() {
            out.push_str(&format!("    index {};\n", v.index_files.join(" ")));
        }
        out.push_str(&format!(
            "    autoindex {};\n",
            if v.autoindex { "on" } else { "off" }
        ));
        out.push_str(&format!("    access_log {};\n", quoted(&v.access_log)));
        out.push_str(&format!("    error_log {};\n", quoted(&v.error_log)));
        if v.suspended {
            out.push_str(
                "\n    # Suspended: every path answers the suspend skeleton's page.\n    \
                 location / {\n        try_files $uri /index.html =404;\n    }\n",
            );
        }
        out.push_str("}\n");
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
    fn a_server_block() {
        let docs = vec!["index.html".to_string(), "index.htm".to_string()];
        let s = site();
        let v = View::new(&s, "/var/log/web", "/srv/suspended", &docs);
        assert_eq!(
            Nginx.render(&v),
            "server {\n\
             \x20   listen 192.0.2.10:80;\n\
             \x20   server_name example.com;\n\
             \x20   root \"/srv/homes/alice/example.com\";\n\
             \x20   index index.html index.htm;\n\
             \x20   autoindex off;\n\
             \x20   access_log \"/var/log/web/example.com.access.log\";\n\
             \x20   error_log \"/var/log/web/example.com.error.log\";\n\
             }\n"
        );
    }

    #[test]
    fn suspended_ipv6_and_no_index() {
        let mut s = site();
        s.ip = "2001:db8::1".parse().unwrap();
        s.port = 8080;
        s.index = true;
        let text = Nginx.render(&View::new(&s, "/l", "/srv/suspended", &[]));
        assert!(text.contains("listen [2001:db8::1]:8080;\n"), "{text}");
        assert!(text.contains("autoindex on;\n"));
        assert!(!text.contains("    index "), "{text}");
        s.suspended = true;
        let text = Nginx.render(&View::new(&s, "/l", "/srv/suspended", &[]));
        assert!(text.contains("root \"/srv/suspended\";\n"));
        assert!(text.contains("autoindex off;\n"));
        assert!(text.contains("try_files $uri /index.html =404;"));
    }
}
