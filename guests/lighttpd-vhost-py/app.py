"""The `lighttpd_vhost` implementation of the logical resource `hosting`, written in Python:
one lighttpd virtual host per site, child of an `account`, keyed by its host name. It honours
the same parameters and config attributes as nginx_vhost and apache_vhost and writes the same
files (`hosting.py`), in lighttpd's syntax (`lighttpd.py`). This module is the WIT glue
between the `paasm:resource/provider` world and them.
"""
from typing import List, Optional

import hosting
import lighttpd
from wit_world import exports
from wit_world.imports import log, paasm_platform_types as ptypes, paasm_resource_types as rtypes
from wit_world.imports.parameters import Parameters
from componentize_py_types import Err

PHYSICAL_NAME = "lighttpd_vhost"
DESCRIPTION = "lighttpd virtual web host"

PROVIDER = hosting.Provider(PHYSICAL_NAME, lighttpd.render)

PROP_TYPES = {
    "str": rtypes.PropType.STR,
    "unum": rtypes.PropType.UNUM,
    "bool": rtypes.PropType.BOOL,
    "select": rtypes.PropType.SELECT,
    "path": rtypes.PropType.PATH,
    "ip": rtypes.PropType.IP,
    "domain": rtypes.PropType.DOMAIN,
}


def props(schema: List[hosting.Prop]) -> List[rtypes.Prop]:
    return [
        rtypes.Prop(
            name=p.name,
            description=p.description,
            type=PROP_TYPES[p.type],
            default=p.default,
            key=p.key,
            optional=p.optional,
            readonly=p.readonly,
            choices=[rtypes.Choice(name=n, value=v, description=d) for n, v, d in p.choices],
        )
        for p in schema
    ]


def values(p: Parameters) -> hosting.Values:
    out = {}
    for name in p.names():
        value = p.get(name)
        if value is not None:
            out[name] = value
    return out


def pkey(key: Optional[ptypes.Key]) -> Optional[str]:
    """A physical key in the recorded form: num:7, str:alice."""
    if isinstance(key, ptypes.Key_Num):
        return f"num:{key.value}"
    if isinstance(key, ptypes.Key_Str):
        return f"str:{key.value}"
    return None


def call(p: Parameters) -> hosting.Call:
    lkey = p.lkey()
    parent = p.parent()
    return hosting.Call(
        params=values(p),
        lkey=lkey.value if isinstance(lkey, ptypes.Key_Str) else str(lkey.value),
        parent=None if parent is None else values(parent),
        parent_pkey=None if parent is None else pkey(parent.pkey()),
    )


def error(e: hosting.HostingError) -> Err:
    if e.kind == "already-exists":
        return Err(rtypes.Error_AlreadyExists(e.message))
    if e.kind == "not-found":
        return Err(rtypes.Error_NotFound(e.message))
    if e.kind == "invalid-parameter":
        return Err(rtypes.Error_InvalidParameter(rtypes.InvalidParameter(name=e.name, message=e.message)))
    return Err(rtypes.Error_Failed(e.message))


def finish(p: Parameters, operation) -> None:
    """Runs an operation, sets what it answered in `p` and logs what it did."""
    try:
        outcome = operation()
    except hosting.HostingError as e:
        raise error(e) from None
    for name, value in sorted(outcome.set.items()):
        p.set(name, value)
    for note in outcome.notes:
        log.log(log.Level.INFO, note)


class Operations(exports.Operations):
    def describe(self) -> rtypes.Description:
        return rtypes.Description(
            resource_name=hosting.RESOURCE_NAME,
            physical_name=PHYSICAL_NAME,
            lkey_name=hosting.LKEY_NAME,
            lkey_kind=rtypes.KeyKind.STR,
            resource_description=DESCRIPTION,
            parent_name=hosting.PARENT_NAME,
            managed_pkey=False,
            instance_schema=props(hosting.INSTANCE_SCHEMA),
            config_schema=props(hosting.CONFIG_SCHEMA),
            exclusive=False,
            offline=False,
            ignore_exists=False,
            cacheable=True,
            case_sensitive=False,
            listable=True,
        )

    def create(self, params: Parameters) -> None:
        finish(params, lambda: PROVIDER.create(call(params)))

    def get(self, params: Parameters) -> None:
        finish(params, lambda: PROVIDER.get(call(params)))

    def update(self, params: Parameters, new_params: Parameters) -> None:
        finish(params, lambda: PROVIDER.update(call(params), values(new_params)))

    def delete(self, params: Parameters) -> None:
        finish(params, lambda: PROVIDER.delete(call(params)))

    def suspend(self, params: Parameters) -> None:
        finish(params, lambda: PROVIDER.suspend(call(params)))

    def resume(self, params: Parameters) -> None:
        finish(params, lambda: PROVIDER.resume(call(params)))

    def enumerate(self, parent_pkey: Optional[ptypes.Key], config: Parameters) -> List[ptypes.Key]:
        try:
            hostnames, notes = PROVIDER.enumerate(pkey(parent_pkey), values(config))
        except hosting.HostingError as e:
            raise error(e) from None
        for note in notes:
            log.log(log.Level.WARN, note)
        return [ptypes.Key_Str(h) for h in hostnames]
