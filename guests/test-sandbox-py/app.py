"""A guest that tries to reach the network and read a file it was not granted."""
import socket

# Bundled explicitly: the socket module encodes host names with it, and componentize-py only
# bundles the modules a guest imports.
import encodings.idna  # noqa: F401

from wit_world import exports
from wit_world.imports import log
from componentize_py_types import Err


class Queries(exports.Queries):
    def connect(self, host: str, port: int) -> str:
        try:
            # A numeric address is connected to as it is, with no name lookup.
            with socket.socket(socket.AF_INET6 if ":" in host else socket.AF_INET) as conn:
                conn.settimeout(5)
                conn.connect((host, port))
                return conn.recv(64).decode("utf-8", "replace")
        except OSError as e:
            log.log(log.Level.WARN, f"connect to {host}:{port} refused: {e!r}")
            raise Err(f"cannot connect to {host}:{port}: {e!r}")

    def read_file(self, path: str) -> str:
        with open(path, encoding="utf-8") as f:
            return f.read()

    def ping(self) -> str:
        return "pong"
