"""A real HTTP service on 127.0.0.1 for probes: /ok answers 200, /error 500, /slow after a delay, /hang
until the test ends."""

from __future__ import annotations

import socket
import threading

from helpers import LocalServer


class Endpoints(LocalServer):
    def __init__(self, slow_seconds: float = 0.3):
        self.slow_seconds = slow_seconds
        self.released = threading.Event()  # set on exit: /hang answers then, so no thread outlives the test
        self.hits: list[str] = []

    def url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    def respond(self, handler, body):
        self.hits.append(handler.path)
        path = handler.path.split("?")[0]
        if path == "/slow":
            self.released.wait(self.slow_seconds)  # the endpoint's latency, not a test wait
        elif path == "/hang":
            self.released.wait()
        handler.send_response(500 if path == "/error" else 200)
        handler.send_header("Content-Length", "2")
        handler.end_headers()
        handler.wfile.write(b"ok")

    def before_shutdown(self):
        self.released.set()


def closed_port_url(path: str = "/") -> str:
    """A URL on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
