"""Local stand-ins for Notion, n8n and HubSpot: a real HTTP server on 127.0.0.1 speaking their shapes.

The demo (`ops up --demo`) points the sources at one of these, so a newcomer sees the syncs work without
accounts; the tests use the same server to script what the providers do (429 with their headers, 401,
pages of results). What it implements, as the providers document it:
- Notion `POST /v1/search`: Bearer token and a `Notion-Version` header; `start_cursor`/`page_size` in,
  `{"object": "list", "results", "next_cursor", "has_more"}` out; errors `{"object": "error", "status", "code", "message"}`.
- n8n `GET /api/v1/executions?status=&limit=&cursor=`: `X-N8N-API-KEY`; newest first; `{"data", "nextCursor"}`.
- HubSpot `POST /crm/v3/objects/contacts/search`: Bearer token; `filterGroups` (lastmodifieddate GTE ms),
  `limit`, `after`; `{"total", "results", "paging": {"next": {"after"}}}`; 429s carry
  `X-HubSpot-RateLimit-*` headers; errors `{"status": "error", "message", "category", "correlationId"}`.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlsplit

NOTION, N8N, HUBSPOT = "notion", "n8n", "hubspot"
DEMO_TOKEN = "demo-token"


@dataclass
class Reply:
    """A scripted answer: status, headers and a JSON body."""

    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: dict = field(default_factory=dict)


def rate_limited(provider: str, retry_after: int = 1) -> Reply:
    if provider == HUBSPOT:
        # HubSpot sends no Retry-After: the window's length and what remains of it.
        return Reply(429, {"X-HubSpot-RateLimit-Interval-Milliseconds": str(retry_after * 1000),
                           "X-HubSpot-RateLimit-Max": "100", "X-HubSpot-RateLimit-Remaining": "0"},
                     {"status": "error", "message": "You have reached your ten_secondly_rolling limit.",
                      "errorType": "RATE_LIMIT", "correlationId": str(uuid.uuid4()), "policyName": "TEN_SECONDLY_ROLLING"})
    if provider == NOTION:
        return Reply(429, {"Retry-After": str(retry_after)},
                     {"object": "error", "status": 429, "code": "rate_limited",
                      "message": "You have been rate limited. Please try again in a few minutes."})
    return Reply(429, {"Retry-After": str(retry_after)}, {"message": "Too many requests"})


def unauthorized(provider: str) -> Reply:
    if provider == NOTION:
        return Reply(401, body={"object": "error", "status": 401, "code": "unauthorized",
                                "message": "API token is invalid."})
    if provider == HUBSPOT:
        return Reply(401, body={"status": "error", "message": "Authentication credentials not found.",
                                "category": "INVALID_AUTHENTICATION", "correlationId": str(uuid.uuid4())})
    return Reply(401, body={"message": "unauthorized"})


@dataclass
class StandIns:
    """The three APIs on one port. Fill `pages`, `executions`, `contacts`; script `replies[provider]`
    (answered first, one per request); read `arrivals[provider]` (time.monotonic() of each request)."""

    token: str = DEMO_TOKEN
    pages: list[dict] = field(default_factory=list)
    executions: list[dict] = field(default_factory=list)
    contacts: list[dict] = field(default_factory=list)
    replies: dict[str, list[Reply]] = field(default_factory=lambda: {NOTION: [], N8N: [], HUBSPOT: []})
    arrivals: dict[str, list[float]] = field(default_factory=lambda: {NOTION: [], N8N: [], HUBSPOT: []})
    requests: dict[str, list[dict]] = field(default_factory=lambda: {NOTION: [], N8N: [], HUBSPOT: []})
    host: str = "127.0.0.1"
    port: int = 0
    server: ThreadingHTTPServer | None = None

    @property
    def base_url(self) -> str:
        host, port = self.server.server_address[:2]
        return f"http://{host}:{port}"

    def start(self) -> StandIns:
        standins = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self):
                length = int(self.headers.get("Content-Length") or 0)
                standins._answer(self, self.rfile.read(length) if length else b"")

            do_GET = do_POST

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer((self.host, self.port), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True, name="source-standins").start()
        return self

    def stop(self) -> None:
        if self.server:
            self.server.shutdown()
            self.server.server_close()

    def __enter__(self) -> StandIns:
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def _answer(self, handler: BaseHTTPRequestHandler, raw: bytes) -> None:
        url = urlsplit(handler.path)
        provider = {"/v1/search": NOTION, "/api/v1/executions": N8N,
                    "/crm/v3/objects/contacts/search": HUBSPOT}.get(url.path)
        if provider is None:
            return _send(handler, Reply(404, body={"message": f"no route {url.path}"}))
        self.arrivals[provider].append(time.monotonic())
        query = {k: v[-1] for k, v in parse_qs(url.query).items()}
        body = json.loads(raw) if raw else {}
        self.requests[provider].append({"query": query, "body": body, "headers": dict(handler.headers.items())})
        if self.replies[provider]:
            return _send(handler, self.replies[provider].pop(0))
        if not self._authorized(provider, handler):
            return _send(handler, unauthorized(provider))
        answer = {NOTION: self._notion, N8N: self._n8n, HUBSPOT: self._hubspot}[provider](query, body)
        _send(handler, answer)

    def _authorized(self, provider: str, handler: BaseHTTPRequestHandler) -> bool:
        if provider == N8N:
            return handler.headers.get("X-N8N-API-KEY") == self.token
        bearer = handler.headers.get("Authorization") == f"Bearer {self.token}"
        return bearer and (provider != NOTION or bool(handler.headers.get("Notion-Version")))

    def _notion(self, query: dict, body: dict) -> Reply:
        pages = [p for p in self.pages if (body.get("filter") or {}).get("value", "page") == p["object"]]
        start, size = int(body.get("start_cursor") or 0), min(int(body.get("page_size") or 100), 100)
        chunk, more = pages[start:start + size], start + size < len(pages)
        return Reply(200, body={"object": "list", "results": chunk, "next_cursor": str(start + size) if more else None,
                                "has_more": more, "type": "page_or_database", "page_or_database": {}})

    def _n8n(self, query: dict, body: dict) -> Reply:
        found = sorted((e for e in self.executions if not query.get("status") or e["status"] == query["status"]),
                       key=lambda e: int(e["id"]), reverse=True)
        start, size = int(query.get("cursor") or 0), min(int(query.get("limit") or 100), 250)
        more = start + size < len(found)
        return Reply(200, body={"data": found[start:start + size], "nextCursor": str(start + size) if more else None})

    def _hubspot(self, query: dict, body: dict) -> Reply:
        since = 0
        for group in body.get("filterGroups") or []:
            for f in group.get("filters") or []:
                if f.get("propertyName") == "lastmodifieddate" and f.get("operator") == "GTE":
                    since = int(f["value"])
        found = sorted((c for c in self.contacts if _ms(c["updatedAt"]) >= since), key=lambda c: c["updatedAt"])
        start, size = int(body.get("after") or 0), min(int(body.get("limit") or 10), 200)
        more = start + size < len(found)
        return Reply(200, body={"total": len(found), "results": found[start:start + size]}
                     | ({"paging": {"next": {"after": str(start + size)}}} if more else {}))


def _ms(iso: str) -> int:
    return int(datetime.fromisoformat(iso.replace("Z", "+00:00")).timestamp() * 1000)


def _send(handler: BaseHTTPRequestHandler, reply: Reply) -> None:
    payload = json.dumps(reply.body).encode()
    handler.send_response(reply.status)
    handler.send_header("Content-Type", "application/json")
    handler.send_header("Content-Length", str(len(payload)))
    for name, value in reply.headers.items():
        handler.send_header(name, value)
    handler.end_headers()
    handler.wfile.write(payload)


def iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def notion_page(page_id: str, title: str, tags: list[str], edited: datetime) -> dict:
    return {"object": "page", "id": page_id, "created_time": iso(edited - timedelta(days=30)),
            "last_edited_time": iso(edited), "archived": False, "url": f"https://www.notion.so/{page_id.replace('-', '')}",
            "properties": {"Name": {"id": "title", "type": "title",
                                    "title": [{"type": "text", "plain_text": title, "text": {"content": title}}]},
                           "Tags": {"id": "tags", "type": "multi_select",
                                    "multi_select": [{"id": t.lower(), "name": t, "color": "default"} for t in tags]}}}


def n8n_execution(execution_id: int, workflow_id: str, status: str, started: datetime) -> dict:
    return {"id": str(execution_id), "finished": status == "success", "mode": "trigger", "retryOf": None,
            "retrySuccessId": None, "startedAt": iso(started), "stoppedAt": iso(started + timedelta(seconds=3)),
            "workflowId": workflow_id, "waitTill": None, "status": status}


def hubspot_contact(contact_id: int, email: str, updated: datetime) -> dict:
    return {"id": str(contact_id), "createdAt": iso(updated - timedelta(days=10)), "updatedAt": iso(updated),
            "archived": False, "properties": {"email": email, "firstname": email.split("@")[0].title(),
                                              "lastname": "Demo", "hs_object_id": str(contact_id),
                                              "lastmodifieddate": iso(updated)}}


def demo_standins(now: datetime | None = None, port: int = 0) -> StandIns:
    """A stand-in filled with a small believable workspace: canonical pages, a failing workflow, contacts."""
    now = now or datetime.now(UTC)
    pages = [notion_page(f"0000000{i}-demo-page", title, tags, now - timedelta(hours=i))
             for i, (title, tags) in enumerate([("Incident response SOP", ["SOP"]), ("Pricing (final)", ["Final"]),
                                                ("Brainstorm notes", ["Draft"]), ("Onboarding", ["Canonical", "SOP"])])]
    executions = [n8n_execution(100 + i, "wf-invoices" if i < 4 else "wf-crm", "error" if i != 5 else "success",
                                now - timedelta(minutes=5 * i)) for i in range(7)]
    contacts = [hubspot_contact(500 + i, f"person{i}@example.com", now - timedelta(minutes=20 * i)) for i in range(5)]
    return StandIns(pages=pages, executions=executions, contacts=contacts, port=port)
