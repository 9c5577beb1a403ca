"""A local webhook receiver for the alert tests: a tiny HTTP server in a thread."""

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


class Hooks:
    """Bodies a local webhook receiver got."""

    def __init__(self) -> None:
        self.bodies: list[dict[str, Any]] = []

    @property
    def kinds(self) -> list[str]:
        """The kinds of the events received, in order."""
        return [str(body["event"]["kind"]) for body in self.bodies]


@contextmanager
def receiving_webhook() -> Iterator[tuple[str, Hooks]]:
    """A server taking JSON posts while the block runs; its URL and what it got."""
    hooks = Hooks()

    class Receiver(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers["Content-Length"])
            hooks.bodies.append(json.loads(self.rfile.read(length)))
            self.send_response(200)
            self.end_headers()

        def log_message(self, *_args: object) -> None:
            """Quiet."""

    server = ThreadingHTTPServer(("127.0.0.1", 0), Receiver)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", hooks
    finally:
        server.shutdown()
        server.server_close()
