"""The lighttpd syntax of one site, for inclusion from lighttpd.conf
(`include "<vhostsdir>/*.conf"`):

    $SERVER["socket"] == "<ip>:<port>" {            # "[<ip>]:<port>" for IPv6
        $HTTP["host"] =~ "^<hostname>(:[0-9]+)?$" {
            server.document-root = "<home>/<docroot>"   # "<suspendskeleton>" while suspended
            index-file.names = ( "<defaultdocs>", ... )
            dir-listing.activate = "enable"|"disable"   # the index parameter; off while suspended
            accesslog.filename = "<logsdir>/<hostname>.access.log"
            # while suspended only: every path answers the skeleton's index.html
            server.error-handler-404 = "/index.html"
        }
    }

The socket condition makes lighttpd listen on the site's address (several sites on one
address share the socket). lighttpd keeps one error log per server (`server.errorlog` is not
allowed in a condition), so a site has no error log of its own. It uses the core and the
modules lighttpd loads by default (mod_indexfile, mod_dirlisting, mod_staticfile) plus
mod_accesslog, which the operator's configuration loads.
"""
from hosting import View


def quoted(text: str) -> str:
    """A lighttpd string (the site rules keep `"`, `\\` and `$` out of paths and names)."""
    return f'"{text}"'


def host_pattern(hostname: str) -> str:
    """A regular expression matching the Host header of the site, with or without a port."""
    return "^" + hostname.replace(".", "\\.") + "(:[0-9]+)?$"


def render(v: View) -> str:
    inner = [f"server.document-root = {quoted(v.root)}"]
    if v.index_files:
        inner.append(f"index-file.names = ( {', '.join(quoted(d) for d in v.index_files)} )")
    inner.append(f'dir-listing.activate = "{"enable" if v.autoindex else "disable"}"')
    inner.append(f"accesslog.filename = {quoted(v.access_log)}")
    if v.suspended:
        inner.append("# Suspended: every path answers the suspend skeleton's page.")
        inner.append('server.error-handler-404 = "/index.html"')
    body = "".join(f"        {line}\n" for line in inner)
    return (
        f"$SERVER[\"socket\"] == {quoted(v.listen)} {{\n"
        f"    $HTTP[\"host\"] =~ {quoted(host_pattern(v.site.hostname))} {{\n"
        f"{body}"
        "    }\n"
        "}\n"
    )
