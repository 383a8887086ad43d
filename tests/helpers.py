"""Small helpers the tests share: SQL in one line, real HTTP servers on 127.0.0.1, sensor ticks in one window."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Self

from sqlalchemy import text

from ops_platform.framework.run_keys import RETRY_WINDOW_SECONDS, window_index
from ops_platform.notifications.channels import SIGNATURE_HEADER, verify


def free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def sql(postgres, statement: str, **params):
    """Run one statement in its own transaction; return its rows ([] when it returns none)."""
    with postgres.begin() as conn:
        result = conn.execute(text(statement), params)
        return result.all() if result.returns_rows else []


@dataclass
class Received:
    at: float  # time.monotonic() when the request arrived
    body: bytes
    signature_ok: bool  # the X-Ops-Signature check
    headers: dict[str, str] = field(default_factory=dict)  # names in lower case

    @property
    def json(self):
        return json.loads(self.body)


class LocalServer:
    """A real HTTP server on 127.0.0.1 (a free port) while a `with` block runs. Every GET and POST goes
    to `respond`, which subclasses implement; `before_shutdown` runs on exit, before the server stops."""

    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address
        return f"http://{host}:{port}"

    def respond(self, handler: BaseHTTPRequestHandler, body: bytes) -> None:
        """Answer one request through `handler` (send_response, headers, wfile); `body` is what was posted."""
        raise NotImplementedError

    def before_shutdown(self) -> None:
        """Release requests still waiting, so the server can stop."""

    @staticmethod
    def reply_json(handler: BaseHTTPRequestHandler, status: int, answer) -> None:
        """Answer with `status` and `answer` as a JSON body."""
        data = json.dumps(answer).encode()
        handler.send_response(status)
        handler.send_header("Content-Type", "application/json")
        handler.send_header("Content-Length", str(len(data)))
        handler.end_headers()
        handler.wfile.write(data)

    def __enter__(self) -> Self:
        local = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                local.respond(self, self.rfile.read(int(self.headers.get("Content-Length") or 0)))

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        return self

    def __exit__(self, *exc):
        self.before_shutdown()
        self.server.shutdown()
        self.server.server_close()


@dataclass
class Receiver(LocalServer):
    """A webhook endpoint that checks the HMAC signature, like a real consumer would. It answers the
    scripted `replies` (status, headers) first, then `status`; a bad signature always gets 401."""

    secret: str
    status: int = 200
    replies: list[tuple[int, dict[str, str]]] = field(default_factory=list)
    requests: list[Received] = field(default_factory=list)

    @property
    def url(self) -> str:
        return f"{self.base_url}/hook"

    def respond(self, handler, body):
        ok = verify(self.secret, body, handler.headers.get(SIGNATURE_HEADER, ""))
        self.requests.append(Received(time.monotonic(), body, ok, {k.lower(): v for k, v in handler.headers.items()}))
        status, headers = (self.replies.pop(0) if self.replies else (self.status, {})) if ok else (401, {})
        handler.send_response(status)
        for name, value in headers.items():
            handler.send_header(name, value)
        handler.end_headers()


def wait_for(condition, what: str, timeout: float = 30.0, every: float = 0.2):
    """Poll `condition` until it returns something truthy (returned), or fail naming `what` after `timeout` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = condition()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:.0f} s waiting for {what}")
        time.sleep(every)


HOUR_SECONDS = 60 * 60  # the window of keys that name the UTC hour: incidents, stalled builds


def in_one_window(*calls: Callable, times: int = 1, window_seconds: int = RETRY_WINDOW_SECONDS) -> list:
    """The results of `calls`, called in order (`times` times over) within one wall-clock window of
    `window_seconds` (the one run keys end in, framework/run_keys.py), so keys made from datetime.now()
    can be compared. When a window boundary fell between the first and the last call, all are called
    again: a few calls can straddle one boundary, never two in a row."""
    for _ in range(2):
        window = window_index(datetime.now(UTC), window_seconds)
        results = [call() for _ in range(times) for call in calls]
        if window_index(datetime.now(UTC), window_seconds) == window:
            return results
    raise AssertionError(f"the calls straddled a {window_seconds} s window boundary twice in a row")


def health_resources(postgres, **overrides) -> dict:
    """What the health monitor reads: Postgres, the notifier's channels, the three APIs (unconfigured unless given)."""
    from ops_platform.notifications import NotifierResource
    from ops_platform.sources.hubspot import HubSpotSource
    from ops_platform.sources.n8n import N8nSource
    from ops_platform.sources.notion import NotionSource

    return {"postgres": postgres, "notifier": NotifierResource(postgres=postgres), "notion_source": NotionSource(),
            "n8n_source": N8nSource(), "hubspot_source": HubSpotSource()} | overrides
