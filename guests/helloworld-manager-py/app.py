"""The ConPaaS HelloWorld manager in Python: the same behaviour as the Rust one.

The host owns the lifecycle (states, adding and removing nodes, listing them); this component
adds what the original HelloWorldManager does on top of it:

- every new agent node is configured with $STRING = helloworld (agent-context),
- once the new nodes' agents answer, each one is started with its `startup` command
  (on-nodes-added),
- get_helloworld asks every node's agent for its greeting, logs what each answered and
  replies {"helloworld": [node ids]},
- upload_note (an UPLOAD method) takes a file and logs its first line.

Nothing is kept between calls: the nodes and the service state come from the host's controller.
"""
import json
from typing import Callable, List, Tuple

from wit_world import exports
from wit_world.exports import queries, uploads
from wit_world.imports import agents, controller, log, types
from componentize_py_types import Err, Ok

RUNNING = "RUNNING"


def info(message: str) -> None:
    log.log(log.Level.INFO, message)


def greeting(reply: str) -> str:
    """The greeting in an agent's get_helloworld reply, {"result": "<greeting>"}; any other
    reply as JSON text."""
    try:
        value = json.loads(reply)
    except ValueError:
        return reply
    if isinstance(value, dict) and isinstance(value.get("result"), str):
        return value["result"]
    return json.dumps(value, separators=(",", ":"))


def call_each(
    ids: List[str],
    verb: agents.Verb,
    method: str,
    logged: Callable[[str, str], str],
    failure: Callable[[str, str], str],
) -> None:
    """Calls `method` on the agents of every node in `ids` at once, logs `logged(id, reply)`
    for each answer and fails with every `failure(id, error)` joined by "; "."""
    replies = agents.call_each(ids, verb, method, "{}")
    failures = []
    for node_id, reply in zip(ids, replies):
        if isinstance(reply, Ok):
            info(logged(node_id, reply.value))
        else:
            failures.append(failure(node_id, reply.value))
    if failures:
        raise Err("; ".join(failures))


class Lifecycle(exports.Lifecycle):
    def on_startup(self) -> None:
        info("Manager started up")

    def agent_context(self, role: str, cloud: str) -> List[Tuple[str, str]]:
        """$STRING = helloworld for every agent, as the original's update_context sets it."""
        return [("STRING", "helloworld")]

    def on_nodes_added(self, nodes: List[types.Node]) -> None:
        """Starts the agents of the new nodes, all at once."""
        ids = [node.id for node in nodes]
        call_each(
            ids,
            agents.Verb.POST,
            "startup",
            lambda node_id, _: f"Started the agent on {node_id}",
            lambda node_id, error: f"startup failed on {node_id}: {error}",
        )

    def on_nodes_removing(self, nodes: List[types.Node]) -> None:
        pass

    def on_shutdown(self) -> None:
        pass


class Queries(exports.Queries):
    def get_helloworld(self) -> queries.HelloworldReply:
        if controller.service_state() != RUNNING:
            raise Err("ERROR: Wrong state to get_helloworld")
        ids = [node.id for node in controller.list_nodes()]
        call_each(
            ids,
            agents.Verb.GET,
            "get_helloworld",
            lambda node_id, reply: f"Received {greeting(reply)} from {node_id}",
            lambda node_id, error: f"ERROR: get_helloworld failed on {node_id}: {error}",
        )
        return queries.HelloworldReply(helloworld=ids)


class Uploads(exports.Uploads):
    def upload_note(self, note: bytes) -> uploads.NoteInfo:
        if len(note) > 0xFFFFFFFF:
            raise Err("the note is too large")
        text = bytes(note).decode("utf-8", "replace")
        # The first line as Rust's str::lines gives it: up to "\n", without a trailing "\r".
        first_line = text.split("\n", 1)[0].removesuffix("\r")
        info(f"Received a note of {len(note)} bytes: {first_line}")
        return uploads.NoteInfo(bytes=len(note), first_line=first_line)
