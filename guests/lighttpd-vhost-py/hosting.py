"""What a `hosting` provider does, on plain data and the file system: the same rules, files
and answers as the Rust providers' `hosting-common` (nginx_vhost, apache_vhost), so that a
site behaves alike whichever implementation is active. A renderer (`render(view) -> str`)
supplies the web server's syntax; nothing here knows WIT.

One file per site, `<vhostsdir>/<hostname>.conf`: a `# paasm: name=value` header recording
every instance parameter (so `get` never parses web server syntax), then the web server's
configuration of the site. `create` (and an `update` that changes `docroot`) makes the document
root `<account home>/<docroot>` with an `index.html` naming the site when it has none of the
default documents; `suspend` makes the suspend skeleton, with an `index.html`, when missing;
`delete` removes the file and, with `removecontent`, the document root (not when another site
serves it). Nothing is kept between calls: the file is the only record of a site.
"""
import ipaddress
import os
import re
import shutil
from dataclasses import dataclass, field, replace
from typing import Callable, Dict, List, Optional, Tuple

RESOURCE_NAME = "hosting"
PARENT_NAME = "account"
LKEY_NAME = "hostname"

# The choices of `status`: (name, value, description), the seed's IIS site commands.
STATUS_CHOICES = [
    ("starting", "1", "starting virtual web host"),
    ("stopping", "3", "stopping virtual web host"),
    ("pausing", "5", "pausing virtual web host"),
    ("continuing", "7", "continuing virtual web host"),
]

DEFAULT_DOCS = "index.html, index.htm"


@dataclass(frozen=True)
class Prop:
    """One property of a schema."""

    name: str
    type: str  # str, unum, bool, select, path, ip, domain
    description: str
    default: Optional[str] = None
    key: bool = False
    optional: bool = False
    readonly: bool = False
    choices: Tuple[Tuple[str, str, str], ...] = ()


INSTANCE_SCHEMA = [
    Prop("hostname", "domain", "virtual web host name", key=True),
    Prop("ip", "ip", "virtual web host ip"),
    Prop("port", "unum", "virtual web host port", default="80"),
    Prop(
        "docroot",
        "str",
        "document root directory, relative to the account's home (default: the host name)",
        optional=True,
    ),
    Prop("docrootpath", "path", "document root directory full path", readonly=True),
    Prop(
        "index",
        "bool",
        "indexing flag: list directories without an index document",
        default="false",
    ),
    Prop("dedicatedip", "bool", "true if ip is a dedicated ip (recorded only)", default="false"),
    Prop(
        "status",
        "select",
        "status of virtual web host (recorded only)",
        default="starting",
        choices=tuple(STATUS_CHOICES),
    ),
]

CONFIG_SCHEMA = [
    Prop(
        "vhostsdir",
        "path",
        "directory of the virtual host files, one <hostname>.conf per site, included by the web server",
    ),
    Prop("logsdir", "path", "log files directory"),
    Prop("suspendskeleton", "path", "directory holding the page served while a site is suspended"),
    Prop(
        "removecontent",
        "bool",
        "force to remove all content from a deleted website",
        default="false",
    ),
    Prop(
        "defaultdocs",
        "str",
        "list of default documents, separated by commas or spaces",
        default=DEFAULT_DOCS,
    ),
]

Values = Dict[str, str]


class HostingError(Exception):
    """Why an operation failed: kind is already-exists, not-found, invalid-parameter or
    failed; `name` is the parameter of an invalid-parameter error."""

    def __init__(self, kind: str, message: str, name: str = ""):
        super().__init__(message)
        self.kind = kind
        self.message = message
        self.name = name


def invalid(name: str, message: str) -> HostingError:
    return HostingError("invalid-parameter", message, name)


def failed(message: str) -> HostingError:
    return HostingError("failed", message)


def io_failed(what: str, path: str, e: BaseException) -> HostingError:
    return failed(f"cannot {what} {path}: {describe_os_error(e)}")


def describe_os_error(e: BaseException) -> str:
    if isinstance(e, OSError) and e.strerror:
        return e.strerror
    return str(e)


def quote(text: str) -> str:
    """`text` in double quotes with `"` and `\\` escaped, as Rust's `{:?}` writes a plain string."""
    return '"' + text.replace("\\", "\\\\").replace('"', '\\"') + '"'


# ---- header -----------------------------------------------------------------------------

PREFIX = "# paasm: "
FORMAT = "1"


def is_control(c: str) -> bool:
    o = ord(c)
    return o < 0x20 or 0x7F <= o <= 0x9F


def escape(text: str) -> str:
    out = []
    for c in text:
        if c == "%" or is_control(c):
            out.extend(f"%{b:02X}" for b in c.encode("utf-8"))
        else:
            out.append(c)
    return "".join(out)


def unescape(text: str) -> Optional[str]:
    raw = text.encode("utf-8")
    out = bytearray()
    i = 0
    while i < len(raw):
        if raw[i] == 0x25:  # %
            digits = raw[i + 1 : i + 3]
            if len(digits) != 2 or not all(chr(d) in "0123456789abcdefABCDEF" for d in digits):
                return None
            out.append(int(digits, 16))
            i += 3
        else:
            out.append(raw[i])
            i += 1
    try:
        return out.decode("utf-8")
    except UnicodeDecodeError:
        return None


def encode_header(fields: List[Tuple[str, str]]) -> str:
    return "".join(f"{PREFIX}{escape(name)}={escape(value)}\n" for name, value in fields)


def decode_header(text: str) -> Values:
    """The fields of the leading block of `#` lines of the form `# paasm: name=value`."""
    fields: Values = {}
    for line in text.split("\n"):
        line = line.removesuffix("\r")
        if not line.startswith("#"):
            break
        if not line.startswith(PREFIX):
            continue
        rest = line[len(PREFIX) :]
        if "=" not in rest:
            continue
        name, value = rest.split("=", 1)
        name, value = unescape(name.strip()), unescape(value)
        if name is not None and value is not None:
            fields[name] = value
    return fields


# ---- site rules -----------------------------------------------------------------------------


def ascii_lower(text: str) -> str:
    return "".join(chr(ord(c) + 32) if "A" <= c <= "Z" else c for c in text)


def canonical_hostname(text: str) -> str:
    """A host name in canonical form: lower case, without the trailing dot; raises ValueError."""
    name = ascii_lower(text.removesuffix("."))
    if not name:
        raise ValueError("empty")
    if len(name.encode("utf-8")) > 253:
        raise ValueError("longer than 253 characters")
    for label in name.split("."):
        if not label or len(label.encode("utf-8")) > 63:
            raise ValueError("labels must have 1 to 63 characters")
        if not re.fullmatch(r"[a-z0-9-]+", label):
            raise ValueError("labels take only letters, digits and hyphens")
        if label.startswith("-") or label.endswith("-"):
            raise ValueError("labels may not start or end with a hyphen")
    return name


def is_plain_component(text: str) -> bool:
    return text not in ("", ".", "..") and re.fullmatch(r"[A-Za-z0-9._-]+", text) is not None


def canonical_docroot(text: str) -> str:
    if not text:
        raise ValueError("empty")
    if text.startswith("/"):
        raise ValueError("must be relative to the account's home")
    if len(text.encode("utf-8")) > 1024:
        raise ValueError("longer than 1024 characters")
    trimmed = text.rstrip("/")
    if not all(is_plain_component(part) for part in trimmed.split("/")):
        raise ValueError(
            "each component takes only letters, digits, '.', '_' and '-', and may not be '.' or '..'"
        )
    return trimmed


def check_conf_path(text: str) -> None:
    """A path that goes into a web server configuration: absolute, and nothing that could end
    its quoted string or be expanded."""
    if not text.startswith("/"):
        raise ValueError(f"{quote(text)} is not an absolute path")
    for c in text:
        if is_control(c) or c in '"\\$<>':
            raise ValueError(
                f"{quote(text)} contains {c!r}, which cannot be written into a web server configuration"
            )


def parse_ip(text: str) -> str:
    """The address in its canonical text form."""
    try:
        if "%" in text:
            raise ValueError
        return str(ipaddress.ip_address(text))
    except ValueError:
        raise ValueError(f"{quote(text)} is not an ipv4 or ipv6 address") from None


def parse_port(text: str) -> int:
    if re.fullmatch(r"\+?[0-9]+", text) and 1 <= int(text) <= 65535:
        return int(text)
    raise ValueError(f"{quote(text)} is not a port number (1 to 65535)")


def parse_bool(text: str) -> bool:
    lower = ascii_lower(text)
    if lower in ("true", "yes", "on", "1"):
        return True
    if lower in ("false", "no", "off", "0"):
        return False
    raise ValueError(f"{quote(text)} is not true or false")


def parse_status(text: str) -> str:
    for name, value, _ in STATUS_CHOICES:
        if text in (name, value):
            return value
    raise ValueError(f"{quote(text)} is not one of {', '.join(c[0] for c in STATUS_CHOICES)}")


def parse_defaultdocs(text: Optional[str]) -> List[str]:
    text = DEFAULT_DOCS if text is None else text
    docs = [d for d in re.split(r"[,\s]", text) if d]
    for doc in docs:
        if not is_plain_component(doc):
            raise ValueError(
                f"{quote(doc)} is not a plain file name (letters, digits, '.', '_' and '-')"
            )
    return docs


def param(values: Values, name: str, parse: Callable[[str], object]):
    """The value of `name` parsed by `parse`, or None; an invalid-parameter error naming it."""
    if name not in values:
        return None
    try:
        return parse(values[name])
    except ValueError as e:
        raise invalid(name, str(e)) from None


def join(base: str, rel: str) -> str:
    """`base/rel` with exactly one `/` between them."""
    return f"{base.rstrip('/')}/{rel.lstrip('/')}"


def show_bool(value: bool) -> str:
    return "true" if value else "false"


@dataclass
class Site:
    """One site: the instance parameters, plus what the header records beside them."""

    hostname: str
    ip: str
    port: int
    docroot: str
    docrootpath: str
    index: bool
    dedicatedip: bool
    status: str
    suspended: bool
    account: Optional[str]
    account_pkey: Optional[str]  # the recorded form: num:7, str:alice

    def listen(self) -> str:
        if ":" in self.ip:
            return f"[{self.ip}]:{self.port}"
        return f"{self.ip}:{self.port}"

    def values(self) -> Values:
        return {
            "hostname": self.hostname,
            "ip": self.ip,
            "port": str(self.port),
            "docroot": self.docroot,
            "docrootpath": self.docrootpath,
            "index": show_bool(self.index),
            "dedicatedip": show_bool(self.dedicatedip),
            "status": self.status,
        }

    def header(self, provider: str) -> str:
        v = self.values()
        fields = [("provider", provider), ("format", FORMAT)]
        for name in ["hostname", "ip", "port", "docroot", "docrootpath", "index", "dedicatedip", "status"]:
            fields.append((name, v[name]))
        fields.append(("suspended", show_bool(self.suspended)))
        if self.account is not None:
            fields.append(("account", self.account))
        if self.account_pkey is not None:
            fields.append(("account-pkey", self.account_pkey))
        return (
            f"# Managed by paasm ({provider}): changes to this file are overwritten.\n"
            + encode_header(fields)
        )

    @staticmethod
    def from_header(fields: Values) -> "Site":
        """The site the header records; raises ValueError naming the bad field."""

        def get(name: str) -> str:
            if name not in fields:
                raise ValueError(f"no {name} field")
            return fields[name]

        def named(name: str, parse: Callable[[str], object]):
            text = get(name)
            try:
                return parse(text)
            except ValueError as e:
                raise ValueError(f"{name}: {e}") from None

        fmt = get("format")
        if fmt != FORMAT:
            raise ValueError(f"unknown format {quote(fmt)}")
        hostname = named("hostname", canonical_hostname)
        docroot = named("docroot", canonical_docroot)
        docrootpath = get("docrootpath")
        named("docrootpath", check_conf_path)
        pkey = fields.get("account-pkey")
        if pkey is not None and decode_pkey(pkey) is None:
            pkey = None
        return Site(
            hostname=hostname,
            ip=named("ip", parse_ip),
            port=named("port", parse_port),
            docroot=docroot,
            docrootpath=docrootpath,
            index=named("index", parse_bool),
            dedicatedip=named("dedicatedip", parse_bool),
            status=named("status", parse_status),
            suspended=named("suspended", parse_bool),
            account=fields.get("account"),
            account_pkey=pkey,
        )


def decode_pkey(text: str) -> Optional[str]:
    """The canonical recorded form of a physical key (`num:7`, `str:alice`), or None."""
    if text.startswith("num:"):
        digits = text[4:]
        if re.fullmatch(r"[+-]?[0-9]+", digits) and -(2**63) <= int(digits) < 2**63:
            return f"num:{int(digits)}"
        return None
    if text.startswith("str:"):
        return text
    return None


@dataclass
class View:
    """What a renderer writes for one site."""

    site: Site
    listen: str
    root: str
    suspended: bool
    autoindex: bool
    index_files: List[str]
    access_log: str
    error_log: str


def make_view(site: Site, logsdir: str, skeleton: str, index_files: List[str]) -> View:
    return View(
        site=site,
        listen=site.listen(),
        root=skeleton if site.suspended else site.docrootpath,
        suspended=site.suspended,
        autoindex=site.index and not site.suspended,
        index_files=index_files,
        access_log=join(logsdir, f"{site.hostname}.access.log"),
        error_log=join(logsdir, f"{site.hostname}.error.log"),
    )


# ---- operations -----------------------------------------------------------------------------


@dataclass
class Call:
    """One call's input: the instance's collection, the logical key, the parent account's
    collection and physical key (recorded form)."""

    params: Values
    lkey: str
    parent: Optional[Values] = None
    parent_pkey: Optional[str] = None


@dataclass
class Outcome:
    """The values to set in the instance's collection, and what was done, for the log."""

    set: Values = field(default_factory=dict)
    notes: List[str] = field(default_factory=list)


class Provider:
    """The operations of one implementation: its physical name and its renderer."""

    def __init__(self, physical_name: str, render: Callable[[View], str]):
        self.physical_name = physical_name
        self.render = render

    # -- config attributes

    @staticmethod
    def config_path(values: Values, name: str) -> str:
        path = values.get(name, "")
        if not path:
            raise invalid(name, "missing: the attribute must be configured")
        return path

    def conf_path(self, values: Values, name: str) -> str:
        path = self.config_path(values, name)
        try:
            check_conf_path(path)
        except ValueError as e:
            raise invalid(name, str(e)) from None
        return path

    @staticmethod
    def defaultdocs(values: Values) -> List[str]:
        try:
            return parse_defaultdocs(values.get("defaultdocs"))
        except ValueError as e:
            raise invalid("defaultdocs", str(e)) from None

    # -- sites

    @staticmethod
    def hostname(call: Call) -> str:
        text = call.params.get("hostname") or call.lkey
        try:
            return canonical_hostname(text)
        except ValueError as e:
            raise invalid("hostname", str(e)) from None

    @staticmethod
    def conf_file(vhostsdir: str, hostname: str) -> str:
        return join(vhostsdir, f"{hostname}.conf")

    @staticmethod
    def account_home(call: Call, hostname: str) -> str:
        parent = call.parent
        if parent is None:
            raise failed(f"hosting {hostname} has no parent account to hold its document root")
        home = parent.get("home", "")
        if not home:
            homes, name = parent.get("homes", ""), parent.get("name")
            if homes and name is not None and is_plain_component(name):
                home = join(homes, name)
            else:
                raise failed(
                    f"the account of hosting {hostname} has no home: neither its home parameter nor its homes attribute and name"
                )
        try:
            check_conf_path(home)
        except ValueError as e:
            raise failed(
                f"the account's home cannot hold the document root of hosting {hostname}: {e}"
            ) from None
        return home.rstrip("/")

    def parse_file(self, text: str) -> Site:
        fields = decode_header(text)
        writer = fields.get("provider")
        if writer is None:
            raise ValueError("not written by paasm: it has no paasm header")
        if writer != self.physical_name:
            raise ValueError(f"written by {writer}, not by {self.physical_name}")
        try:
            return Site.from_header(fields)
        except ValueError as e:
            raise ValueError(f"unreadable paasm header: {e}") from None

    def read_site(self, call: Call) -> Tuple[str, Site]:
        hostname = self.hostname(call)
        conf = self.conf_file(self.config_path(call.params, "vhostsdir"), hostname)
        try:
            with open(conf, encoding="utf-8") as f:
                text = f.read()
        except FileNotFoundError:
            raise HostingError(
                "not-found", f"hosting {hostname} does not exist: there is no {conf}"
            ) from None
        except (OSError, UnicodeDecodeError) as e:
            raise io_failed("read", conf, e) from None
        try:
            site = self.parse_file(text)
        except ValueError as e:
            raise failed(f"{conf}: {e}") from None
        if site.hostname != hostname:
            raise failed(f"{conf} describes hosting {site.hostname}, not {hostname}")
        return conf, site

    def scan(self, vhostsdir: str, notes: List[str]) -> List[Site]:
        """Every site this provider wrote in `vhostsdir` (none when it is missing)."""
        try:
            entries = list(os.scandir(vhostsdir))
        except FileNotFoundError:
            return []
        except OSError as e:
            raise io_failed("list", vhostsdir, e) from None
        sites = []
        for entry in entries:
            stem = entry.name.removesuffix(".conf")
            if stem == entry.name or stem.startswith("."):
                continue
            try:
                if canonical_hostname(stem) != stem:
                    continue
            except ValueError:
                continue
            path = join(vhostsdir, f"{stem}.conf")
            if not entry.is_file(follow_symlinks=False):
                continue
            try:
                with open(path, encoding="utf-8") as f:
                    text = f.read()
            except (OSError, UnicodeDecodeError) as e:
                notes.append(f"skipped {path}: {describe_os_error(e)}")
                continue
            # Files of other writers are none of this provider's business; its own broken
            # files are worth a note.
            if decode_header(text).get("provider") != self.physical_name:
                continue
            try:
                site = self.parse_file(text)
            except ValueError as e:
                notes.append(f"skipped {path}: {e}")
                continue
            if site.hostname == stem:
                sites.append(site)
            else:
                notes.append(f"skipped {path}: it describes hosting {site.hostname}")
        sites.sort(key=lambda s: s.hostname)
        return sites

    # -- files

    @staticmethod
    def write_atomically(path: str, text: str) -> None:
        """Writes through a temporary file beside `path`: the web server never reads half a file."""
        directory, name = os.path.split(path)
        tmp = os.path.join(directory, f".{name or 'site.conf'}.paasm-tmp")
        written = False
        try:
            with open(tmp, "w", encoding="utf-8") as f:
                f.write(text)
            written = True
            os.replace(tmp, path)
        except OSError as e:
            try:
                os.remove(tmp)
            except OSError:
                pass
            raise io_failed("write", path if written else tmp, e) from None

    @staticmethod
    def create_dir(path: str, what: str) -> None:
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as e:
            raise io_failed(f"create {what}", path, e) from None

    @staticmethod
    def write_file(path: str, text: str) -> None:
        try:
            with open(path, "w", encoding="utf-8") as f:
                f.write(text)
        except OSError as e:
            raise io_failed("write", path, e) from None

    def prepare_docroot(self, site: Site, docs: List[str], notes: List[str]) -> None:
        root = site.docrootpath
        self.create_dir(root, "document root")
        if not any(os.path.exists(join(root, doc)) for doc in docs + ["index.html"]):
            index = join(root, "index.html")
            self.write_file(index, placeholder_page(site.hostname))
            notes.append(f"wrote {index}")

    def prepare_skeleton(self, skeleton: str, notes: List[str]) -> None:
        try:
            is_dir = os.path.isdir(skeleton) if os.path.lexists(skeleton) else None
        except OSError as e:
            raise io_failed("read", skeleton, e) from None
        if is_dir is False:
            raise invalid("suspendskeleton", f"{skeleton} is not a directory")
        if is_dir is None:
            self.create_dir(skeleton, "suspend skeleton")
            notes.append(f"created the suspend skeleton {skeleton}")
        index = join(skeleton, "index.html")
        if not os.path.exists(index):
            self.write_file(index, SUSPENDED_PAGE)
            notes.append(f"wrote {index}")

    def write_site(self, conf: str, site: Site, call: Call, notes: List[str]) -> None:
        logsdir = self.conf_path(call.params, "logsdir")
        docs = self.defaultdocs(call.params)
        skeleton = ""
        if site.suspended:
            skeleton = self.conf_path(call.params, "suspendskeleton")
            self.prepare_skeleton(skeleton, notes)
        self.create_dir(logsdir, "logs directory")
        view = make_view(site, logsdir, skeleton, docs)
        self.write_atomically(conf, site.header(self.physical_name) + self.render(view))

    # -- the operations

    def create(self, call: Call) -> Outcome:
        hostname = self.hostname(call)
        vhostsdir = self.config_path(call.params, "vhostsdir")
        conf = self.conf_file(vhostsdir, hostname)
        if os.path.lexists(conf):
            raise HostingError("already-exists", f"hosting {hostname} already exists: {conf}")
        p = call.params
        if p.get("docroot"):
            try:
                docroot = canonical_docroot(p["docroot"])
            except ValueError as e:
                raise invalid("docroot", str(e)) from None
        else:
            docroot = hostname
        ip = param(p, "ip", parse_ip)
        if ip is None:
            raise invalid("ip", "missing")
        port = param(p, "port", parse_port) or 80
        index = bool(param(p, "index", parse_bool))
        dedicatedip = bool(param(p, "dedicatedip", parse_bool))
        status = param(p, "status", parse_status) or "1"
        # Everything the file needs is checked before anything is made.
        self.conf_path(p, "logsdir")
        docs = self.defaultdocs(p)
        home = self.account_home(call, hostname)
        site = Site(
            hostname=hostname,
            ip=ip,
            port=port,
            docroot=docroot,
            docrootpath=join(home, docroot),
            index=index,
            dedicatedip=dedicatedip,
            status=status,
            suspended=False,
            account=(call.parent or {}).get("name"),
            account_pkey=call.parent_pkey,
        )
        out = Outcome()
        self.prepare_docroot(site, docs, out.notes)
        self.create_dir(vhostsdir, "virtual hosts directory")
        self.write_site(conf, site, call, out.notes)
        out.notes.append(
            f"created hosting {site.hostname}: {conf}, document root {site.docrootpath}"
        )
        out.set = site.values()
        return out

    def get(self, call: Call) -> Outcome:
        _, site = self.read_site(call)
        return Outcome(set=site.values())

    def update(self, call: Call, new: Values) -> Outcome:
        conf, site = self.read_site(call)
        out = Outcome()
        ip = param(new, "ip", parse_ip)
        port = param(new, "port", parse_port)
        index = param(new, "index", parse_bool)
        dedicatedip = param(new, "dedicatedip", parse_bool)
        status = param(new, "status", parse_status)
        site = replace(
            site,
            ip=site.ip if ip is None else ip,
            port=site.port if port is None else port,
            index=site.index if index is None else index,
            dedicatedip=site.dedicatedip if dedicatedip is None else dedicatedip,
            status=site.status if status is None else status,
        )
        docroot = None
        if "docroot" in new:
            if new["docroot"] == "":
                docroot = site.hostname
            else:
                try:
                    docroot = canonical_docroot(new["docroot"])
                except ValueError as e:
                    raise invalid("docroot", str(e)) from None
        self.conf_path(call.params, "logsdir")
        docs = self.defaultdocs(call.params)
        if docroot is not None and docroot != site.docroot:
            home = self.account_home(call, site.hostname)
            old = site.docrootpath
            site.docrootpath = join(home, docroot)
            site.docroot = docroot
            self.prepare_docroot(site, docs, out.notes)
            out.notes.append(
                f"hosting {site.hostname} now serves {site.docrootpath}; {old} is left as it is"
            )
        if site.account is None:
            site.account = (call.parent or {}).get("name")
        if site.account_pkey is None:
            site.account_pkey = call.parent_pkey
        self.write_site(conf, site, call, out.notes)
        out.notes.append(f"updated hosting {site.hostname}: {conf}")
        out.set = site.values()
        return out

    def set_suspended(self, call: Call, suspended: bool) -> Outcome:
        conf, site = self.read_site(call)
        site.suspended = suspended
        out = Outcome()
        self.write_site(conf, site, call, out.notes)
        verb = "suspended" if suspended else "resumed"
        out.notes.append(f"{verb} hosting {site.hostname}: {conf}")
        out.set = site.values()
        return out

    def suspend(self, call: Call) -> Outcome:
        return self.set_suspended(call, True)

    def resume(self, call: Call) -> Outcome:
        return self.set_suspended(call, False)

    def delete(self, call: Call) -> Outcome:
        conf, site = self.read_site(call)
        remove_content = bool(param(call.params, "removecontent", parse_bool))
        out = Outcome()
        keep = self.content_to_keep(site, call, out.notes) if remove_content else None
        try:
            os.remove(conf)
        except FileNotFoundError:
            raise HostingError(
                "not-found", f"hosting {site.hostname} does not exist: there is no {conf}"
            ) from None
        except OSError as e:
            raise io_failed("remove", conf, e) from None
        out.notes.append(f"deleted hosting {site.hostname}: {conf}")
        if not remove_content:
            return out
        if keep is not None:
            out.notes.append(f"kept the document root {site.docrootpath}: {keep}")
            return out
        try:
            shutil.rmtree(site.docrootpath)
            out.notes.append(f"removed the document root {site.docrootpath}")
        except FileNotFoundError:
            pass
        except OSError as e:
            raise failed(
                f"removed {conf} but cannot remove the document root {site.docrootpath}: {describe_os_error(e)}"
            ) from None
        return out

    def content_to_keep(self, site: Site, call: Call, notes: List[str]) -> Optional[str]:
        """Why the document root of `site` must not be removed, if it must not."""
        root = site.docrootpath
        home = None
        if root.endswith(site.docroot):
            rest = root[: len(root) - len(site.docroot)]
            if rest.endswith("/") and rest[:-1]:
                home = rest[:-1]
        if home is None:
            return f"it is not a directory inside a home ending with {site.docroot}"
        try:
            current = self.account_home(call, site.hostname)
        except HostingError:
            current = None
        if current is not None and current != home:
            return f"it is not inside the account's home {current}"

        def within(a: str, b: str) -> bool:
            return a == b or a.startswith(b + "/")

        vhostsdir = self.config_path(call.params, "vhostsdir")
        for other in self.scan(vhostsdir, notes):
            if other.hostname != site.hostname and (
                within(other.docrootpath, root) or within(root, other.docrootpath)
            ):
                return f"hosting {other.hostname} serves {other.docrootpath}"
        return None

    def enumerate(self, parent_pkey: Optional[str], config: Values) -> Tuple[List[str], List[str]]:
        """The host names of the sites this provider wrote, with notes on skipped files; with
        `parent_pkey`, only those of that account (and those that do not say whose they are)."""
        vhostsdir = self.config_path(config, "vhostsdir")
        notes: List[str] = []
        hostnames = []
        for site in self.scan(vhostsdir, notes):
            if parent_pkey is not None and site.account_pkey is not None and site.account_pkey != parent_pkey:
                continue
            hostnames.append(site.hostname)
        return hostnames, notes


def placeholder_page(hostname: str) -> str:
    """The page written into a new document root."""
    return (
        "<!DOCTYPE html>\n<html>\n"
        f'<head><meta charset="utf-8"><title>{hostname}</title></head>\n'
        f"<body>\n<h1>{hostname}</h1>\n"
        f"<p>This is the new site {hostname}. Its content has not been published yet.</p>\n"
        "</body>\n</html>\n"
    )


# The page written into a missing suspend skeleton.
SUSPENDED_PAGE = (
    "<!DOCTYPE html>\n<html>\n"
    '<head><meta charset="utf-8"><title>Site suspended</title></head>\n'
    "<body>\n<h1>This site is suspended</h1>\n"
    "<p>Please contact the site's owner or the hosting provider.</p>\n</body>\n</html>\n"
)
