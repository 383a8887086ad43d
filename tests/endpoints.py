"""A real HTTP service on 127.0.0.1 for probes: /ok answers 200, /error 500, /slow after a delay, /hang
until the test ends."""

from __future__ import annotations

import socket
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Endpoints:
    def __init__(self, slow_seconds: float = 0.3):
        self.slow_seconds = slow_seconds
        self.released = threading.Event()  # set on exit: /hang answers then, so no thread outlives the test
        self.hits: list[str] = []

    def url(self, path: str) -> str:
        host, port = self.server.server_address
        return f"http://{host}:{port}{path}"

    def __enter__(self) -> Endpoints:
        endpoints = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):
                endpoints.hits.append(self.path)
                path = self.path.split("?")[0]
                if path == "/slow":
                    endpoints.released.wait(endpoints.slow_seconds)  # the endpoint's latency, not a test wait
                elif path == "/hang":
                    endpoints.released.wait()
                self.send_response(500 if path == "/error" else 200)
                self.send_header("Content-Length", "2")
                self.end_headers()
                self.wfile.write(b"ok")

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.released.set()
        self.server.shutdown()
        self.server.server_close()


def closed_port_url(path: str = "/") -> str:
    """A URL on 127.0.0.1 where nothing listens: connections are refused."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    return f"http://127.0.0.1:{port}{path}"
