"""The ConPaaS HelloWorld agent in Python: the same behaviour as the Rust one."""
from typing import List, Tuple

import wit_world
from wit_world import exports
from wit_world.exports import queries, uploads
from wit_world.imports import config, log, state, types
from componentize_py_types import Err

STATE = "state"
GREETING = "greeting"
RUNNING = "RUNNING"


def info(message: str) -> None:
    log.log(log.Level.INFO, message)


def get_string(key: str):
    value = state.get(key)
    return None if value is None else bytes(value).decode("utf-8", "replace")


class Lifecycle(exports.Lifecycle):
    def on_startup(self) -> None:
        info("helloworld agent loaded")

    def agent_context(self, role: str, cloud: str) -> List[Tuple[str, str]]:
        return []

    def on_nodes_added(self, nodes: List[types.Node]) -> None:
        pass

    def on_nodes_removing(self, nodes: List[types.Node]) -> None:
        pass

    def on_shutdown(self) -> None:
        pass


class Commands(exports.Commands):
    def startup(self) -> None:
        state.set(STATE, RUNNING.encode())
        info("Agent started up")


class Queries(exports.Queries):
    def get_helloworld(self) -> queries.Hello:
        if get_string(STATE) != RUNNING:
            raise Err("ERROR: Wrong state to get_helloworld")
        greeting = get_string(GREETING)
        if greeting is None:
            greeting = config.get("agent", "STRING_TO_GENERATE")
            if greeting is None:
                raise Err('ERROR: Missing configuration variable "STRING_TO_GENERATE" in section "agent"')
        return queries.Hello(result=greeting)


class Uploads(exports.Uploads):
    def upload_greeting(self, greeting: bytes) -> uploads.UploadInfo:
        try:
            text = bytes(greeting).decode("utf-8")
        except UnicodeDecodeError:
            raise Err("ERROR: greeting is not valid UTF-8")
        text = text.removesuffix("\n").removesuffix("\r")
        state.set(GREETING, text.encode())
        info(f"greeting replaced ({len(greeting)} bytes)")
        return uploads.UploadInfo(bytes=len(greeting))
