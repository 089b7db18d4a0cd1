"""The `note` resource provider in Python: the smallest complete implementation of a logical
resource, and the template of `paasm new --lang python --world provider`.

A note is keyed by its `title` and holds a `text`; its physical form is an entry in the
provider's own `state` (`note/<title>`, and `suspended/<title>` while it is suspended), so every
operation has something real to find, change or miss. The host validates parameters against
the schema, keeps the records and checks existence; the provider adds what only it knows: the
`text` length limit (the config attribute `maxlength`) and the readonly `length` and `status`
it reports back. Replace the state entries with whatever your resource manages.
"""
from typing import List, Optional

from componentize_py_types import Err
from wit_world import exports
from wit_world.imports import log, paasm_platform_types as ptypes, paasm_resource_types as rtypes
from wit_world.imports import state
from wit_world.imports.parameters import Parameters


def prop(name: str, type: rtypes.PropType, description: str, default: Optional[str] = None,
         key: bool = False, optional: bool = False, readonly: bool = False) -> rtypes.Prop:
    return rtypes.Prop(name=name, description=description, type=type, default=default,
                       key=key, optional=optional, readonly=readonly, choices=[])


def title(params: Parameters) -> str:
    return params.get("title") or ""


def stored(title: str) -> str:
    """The note's text, or `not-found` when it has no state entry."""
    value = state.get(f"note/{title}")
    if value is None:
        raise Err(rtypes.Error_NotFound(f'there is no note "{title}"'))
    return value.decode()


def check_length(params: Parameters, text: str) -> None:
    """Refuses a text longer than the config attribute `maxlength`."""
    try:
        most = int(params.get("maxlength") or "280")
    except ValueError:
        most = 280
    if len(text) > most:
        raise Err(rtypes.Error_InvalidParameter(rtypes.InvalidParameter(
            name="text", message=f"a note holds at most {most} characters")))


def report(params: Parameters, title: str, text: str) -> None:
    """Puts what the provider reports into `params`: the text, its length and the status."""
    params.set("text", text)
    params.set("length", str(len(text)))
    suspended = state.get(f"suspended/{title}") is not None
    params.set("status", "suspended" if suspended else "active")


class Operations(exports.Operations):
    def describe(self) -> rtypes.Description:
        return rtypes.Description(
            resource_name="note",
            physical_name="note_state",
            lkey_name="title",
            lkey_kind=rtypes.KeyKind.STR,
            resource_description="a note kept in the provider's state",
            parent_name=None,
            managed_pkey=False,
            instance_schema=[
                prop("title", rtypes.PropType.STR, "what the note is called", key=True),
                prop("text", rtypes.PropType.STR, "what the note says", optional=True),
                prop("priority", rtypes.PropType.UNUM, "how much the note matters", default="1"),
                prop("length", rtypes.PropType.UNUM, "characters in the text", readonly=True),
                prop("status", rtypes.PropType.STR, "active or suspended", readonly=True),
            ],
            config_schema=[
                prop("maxlength", rtypes.PropType.UNUM, "the longest text a note holds",
                     default="280"),
            ],
            exclusive=False,
            offline=False,
            ignore_exists=False,
            cacheable=False,
            case_sensitive=False,
            listable=True,
        )

    def create(self, params: Parameters) -> None:
        name = title(params)
        if state.get(f"note/{name}") is not None:
            raise Err(rtypes.Error_AlreadyExists(f'the note "{name}" exists'))
        text = params.get("text") or ""
        check_length(params, text)
        state.set(f"note/{name}", text.encode())
        report(params, name, text)
        log.log(log.Level.INFO, f"created the note {name}")

    def get(self, params: Parameters) -> None:
        name = title(params)
        report(params, name, stored(name))

    def update(self, params: Parameters, new_params: Parameters) -> None:
        name = title(params)
        text = stored(name)
        new_text = new_params.get("text")
        if new_text is not None:
            check_length(params, new_text)
            state.set(f"note/{name}", new_text.encode())
            text = new_text
        priority = new_params.get("priority")
        if priority is not None:
            params.set("priority", priority)
        report(params, name, text)

    def delete(self, params: Parameters) -> None:
        name = title(params)
        stored(name)
        state.delete(f"note/{name}")
        state.delete(f"suspended/{name}")
        log.log(log.Level.INFO, f"deleted the note {name}")

    def suspend(self, params: Parameters) -> None:
        name = title(params)
        text = stored(name)
        state.set(f"suspended/{name}", b"1")
        report(params, name, text)

    def resume(self, params: Parameters) -> None:
        name = title(params)
        text = stored(name)
        state.delete(f"suspended/{name}")
        report(params, name, text)

    def enumerate(self, parent_pkey: Optional[ptypes.Key], config: Parameters) -> List[ptypes.Key]:
        return [ptypes.Key_Str(k[len("note/"):]) for k in state.keys("note/")]
