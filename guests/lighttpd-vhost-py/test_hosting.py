"""Unit tests of the provider's plain logic on the machine's own Python (`cargo xtask test`
runs them): the header, the site rules, the lighttpd syntax and the operations on a
temporary directory."""
import os
import tempfile
import unittest

import hosting
import lighttpd


def example_site(**changes) -> hosting.Site:
    site = hosting.Site(
        hostname="example.com",
        ip="192.0.2.10",
        port=80,
        docroot="example.com",
        docrootpath="/srv/homes/alice/example.com",
        index=False,
        dedicatedip=False,
        status="1",
        suspended=False,
        account="alice",
        account_pkey="num:1",
    )
    for name, value in changes.items():
        setattr(site, name, value)
    return site


class Header(unittest.TestCase):
    def test_fields_round_trip_in_schema_order(self):
        site = example_site(ip="2001:db8::1", suspended=True, docrootpath="/srv/my homes/a=b")
        text = site.header("lighttpd_vhost")
        lines = text.splitlines()
        self.assertEqual(lines[0], "# Managed by paasm (lighttpd_vhost): changes to this file are overwritten.")
        self.assertEqual(
            [line.split("=")[0] for line in lines[1:]],
            [f"# paasm: {n}" for n in ["provider", "format", "hostname", "ip", "port", "docroot", "docrootpath", "index", "dedicatedip", "status", "suspended", "account", "account-pkey"]],
        )
        self.assertEqual(hosting.Site.from_header(hosting.decode_header(text)), site)

    def test_percent_and_control_characters_are_escaped(self):
        odd = "50%\nserver { }\t\x7fé"
        text = hosting.encode_header([("note", odd)])
        self.assertEqual(text, "# paasm: note=50%25%0Aserver { }%09%7Fé\n")
        self.assertEqual(hosting.decode_header(text)["note"], odd)

    def test_only_the_leading_comment_block_is_read(self):
        text = "# Managed\n# paasm: a=1\n# a comment\n# paasm: broken\n# paasm: a=2\r\n$SERVER {\n# paasm: b=3\n"
        self.assertEqual(hosting.decode_header(text), {"a": "2"})
        self.assertEqual(hosting.decode_header("x\n# paasm: a=1\n"), {})

    def test_bad_escapes_drop_the_field(self):
        fields = hosting.decode_header("# paasm: a=%zz\n# paasm: b=%4\n# paasm: c=%FF\n# paasm: d=%41\n")
        self.assertEqual(fields, {"d": "A"})


class Rules(unittest.TestCase):
    def test_host_names(self):
        self.assertEqual(hosting.canonical_hostname("WWW.Example.COM."), "www.example.com")
        for bad in ["", "a..b", "-a.b", "a_b.c", "\u212a.example", "a" * 64 + ".b"]:
            with self.assertRaises(ValueError, msg=bad):
                hosting.canonical_hostname(bad)

    def test_document_roots_and_paths(self):
        self.assertEqual(hosting.canonical_docroot("sites/shop/"), "sites/shop")
        for bad in ["/abs", "a/../b", ".", "a b", ""]:
            with self.assertRaises(ValueError, msg=bad):
                hosting.canonical_docroot(bad)
        hosting.check_conf_path("/srv/my sites")
        for bad in ["relative", '/a"b', "/a$b", "/a\\b", "/a\nb"]:
            with self.assertRaises(ValueError, msg=bad):
                hosting.check_conf_path(bad)

    def test_values(self):
        self.assertEqual(hosting.parse_ip("2001:DB8::1"), "2001:db8::1")
        for bad in ["1.2.3", "fe80::1%eth0", "01.2.3.4"]:
            with self.assertRaises(ValueError, msg=bad):
                hosting.parse_ip(bad)
        self.assertEqual(hosting.parse_port("+8080"), 8080)
        for bad in ["0", "65536", "8_0", " 80", "x"]:
            with self.assertRaises(ValueError, msg=bad):
                hosting.parse_port(bad)
        self.assertEqual(hosting.parse_status("pausing"), "5")
        self.assertEqual(hosting.parse_defaultdocs("a.html, b.htm  c"), ["a.html", "b.htm", "c"])
        with self.assertRaises(ValueError):
            hosting.parse_defaultdocs("../x")


class Syntax(unittest.TestCase):
    def test_a_site(self):
        view = hosting.make_view(example_site(), "/var/log/web", "/srv/suspended", ["index.html", "index.htm"])
        self.assertEqual(
            lighttpd.render(view),
            '$SERVER["socket"] == "192.0.2.10:80" {\n'
            '    $HTTP["host"] =~ "^example\\.com(:[0-9]+)?$" {\n'
            '        server.document-root = "/srv/homes/alice/example.com"\n'
            '        index-file.names = ( "index.html", "index.htm" )\n'
            '        dir-listing.activate = "disable"\n'
            '        accesslog.filename = "/var/log/web/example.com.access.log"\n'
            "    }\n"
            "}\n",
        )

    def test_suspended_ipv6_and_no_index(self):
        site = example_site(ip="2001:db8::1", port=8080, index=True)
        text = lighttpd.render(hosting.make_view(site, "/l", "/srv/suspended", []))
        self.assertIn('$SERVER["socket"] == "[2001:db8::1]:8080" {', text)
        self.assertIn('dir-listing.activate = "enable"', text)
        self.assertNotIn("index-file.names", text)
        site.suspended = True
        text = lighttpd.render(hosting.make_view(site, "/l", "/srv/suspended", []))
        self.assertIn('server.document-root = "/srv/suspended"', text)
        self.assertIn('dir-listing.activate = "disable"', text)
        self.assertIn('server.error-handler-404 = "/index.html"', text)


class Operations(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory()
        root = self.tmp.name
        self.config = {
            "vhostsdir": f"{root}/sites",
            "logsdir": f"{root}/logs",
            "suspendskeleton": f"{root}/suspended",
        }
        self.home = f"{root}/homes/alice"
        self.provider = hosting.Provider("lighttpd_vhost", lighttpd.render)

    def tearDown(self):
        self.tmp.cleanup()

    def call(self, key, **params):
        return hosting.Call(
            params={**self.config, **params},
            lkey=key,
            parent={"name": "alice", "home": self.home},
            parent_pkey="num:1",
        )

    def test_the_life_of_a_site(self):
        p = self.provider
        created = p.create(self.call("a.example", ip="127.0.0.1"))
        self.assertEqual(created.set["docrootpath"], f"{self.home}/a.example")
        self.assertTrue(os.path.isfile(f"{self.home}/a.example/index.html"))
        with self.assertRaises(hosting.HostingError) as e:
            p.create(self.call("A.example", ip="127.0.0.1"))
        self.assertEqual(e.exception.kind, "already-exists")
        p.suspend(self.call("a.example"))
        with open(f"{self.config['vhostsdir']}/a.example.conf") as f:
            text = f.read()
        self.assertIn(f'server.document-root = "{self.config["suspendskeleton"]}"', text)
        self.assertTrue(os.path.isfile(f"{self.config['suspendskeleton']}/index.html"))
        p.resume(self.call("a.example"))
        updated = p.update(self.call("a.example"), {"port": "8080", "docroot": "www"})
        self.assertEqual((updated.set["port"], updated.set["docroot"]), ("8080", "www"))
        self.assertEqual(p.get(self.call("a.example")).set, updated.set)
        self.assertEqual(p.enumerate("num:1", self.config)[0], ["a.example"])
        self.assertEqual(p.enumerate("num:2", self.config)[0], [])
        p.delete(self.call("a.example", removecontent="true"))
        self.assertFalse(os.path.exists(f"{self.home}/www"))
        with self.assertRaises(hosting.HostingError) as e:
            p.get(self.call("a.example"))
        self.assertEqual(e.exception.kind, "not-found")

    def test_shared_content_is_kept_and_other_writers_are_ignored(self):
        p = self.provider
        p.create(self.call("a.example", ip="127.0.0.1", docroot="shared"))
        p.create(self.call("b.example", ip="127.0.0.1", docroot="shared/b"))
        with open(f"{self.config['vhostsdir']}/c.example.conf", "w") as f:
            f.write("# paasm: provider=nginx_vhost\n")
        out = p.delete(self.call("a.example", removecontent="true"))
        self.assertTrue(os.path.isdir(f"{self.home}/shared"))
        self.assertIn("kept the document root", out.notes[-1])
        self.assertEqual(p.enumerate(None, self.config)[0], ["b.example"])

    def test_bad_parameters_are_named_before_anything_is_written(self):
        p = self.provider
        for params, name in [({"ip": "1.2.3"}, "ip"), ({"ip": "127.0.0.1", "docroot": "../x"}, "docroot"), ({}, "ip")]:
            with self.assertRaises(hosting.HostingError) as e:
                p.create(self.call("bad.example", **params))
            self.assertEqual((e.exception.kind, e.exception.name), ("invalid-parameter", name))
        self.assertFalse(os.path.exists(self.config["vhostsdir"]))


if __name__ == "__main__":
    unittest.main()
