"""Small helpers the tests share: SQL in one line, a real HTTP receiver on 127.0.0.1."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from sqlalchemy import text

from ops_platform.notifications.channels import SIGNATURE_HEADER, verify


def sql(postgres, statement: str, **params):
    """Run one statement in its own transaction; return its rows ([] when it returns none)."""
    with postgres.begin() as conn:
        result = conn.execute(text(statement), params)
        return result.all() if result.returns_rows else []


@dataclass
class Received:
    at: float
    body: bytes
    signature_ok: bool

    @property
    def json(self):
        return json.loads(self.body)


@dataclass
class Receiver:
    """A webhook endpoint that checks the HMAC signature, like a real consumer would."""

    secret: str
    status: int = 200
    requests: list[Received] = field(default_factory=list)
    server: ThreadingHTTPServer | None = None

    @property
    def url(self) -> str:
        host, port = self.server.server_address
        return f"http://{host}:{port}/hook"

    def __enter__(self) -> Receiver:
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                body = self.rfile.read(int(self.headers["Content-Length"]))
                ok = verify(receiver.secret, body, self.headers.get(SIGNATURE_HEADER, ""))
                receiver.requests.append(Received(time.monotonic(), body, ok))
                status = receiver.status if ok else 401
                self.send_response(status)
                self.end_headers()

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.server.shutdown()
        self.server.server_close()
