"""`webhook/send` (seed 001): a signed POST to a configured webhook, each attempt logged, then a dead letter.

Payload: {"webhook_id": 7, "event": "user.created", "data": {...}}. The URL and secret come from the
`webhooks` row, never from the event; the secret signs the body (`sign`, header SIGNATURE_HEADER) and
appears nowhere else. 5xx, 429 and network errors are retried with exponential backoff and jitter;
other 4xx (and 3xx) are final at once. Attempts already logged count, so a retried run resumes.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass

import httpx
from sqlalchemy import text

from ops_platform.events.outbox import Event, InvalidEvent, Result, require
from ops_platform.framework.dead_letters import dead_letter
from ops_platform.notifications.channels import NOT_RETRIED, SIGNATURE_HEADER, backoff_delay, retryable_status, sign
from ops_platform.resources.postgres import PostgresResource

WEBHOOK_SEND = "webhook/send"
EVENT_NAMES = (WEBHOOK_SEND,)
EVENT_HEADER = "X-Ops-Event"
DELIVERY_HEADER = "X-Ops-Delivery"  # the outbox event id: receivers can drop a delivery they already have


@dataclass(frozen=True)
class WebhookSettings:
    attempts: int = 3  # seed 001: max 3 attempts
    backoff_seconds: float = 1.0  # base of the exponential backoff: 1 s, then 2 s (±25% jitter)
    timeout_seconds: float = 10.0


_HOOK_SQL = text("SELECT id, url, secret, events, active FROM webhooks WHERE id = :id")
_DONE_SQL = text("SELECT attempt, status_code, error, success FROM webhook_deliveries"
                 " WHERE event_id = :event_id AND webhook_id = :webhook_id ORDER BY attempt")
_RECORD_SQL = text(
    "INSERT INTO webhook_deliveries (event_id, webhook_id, attempt, status_code, error, duration_ms, success)"
    " VALUES (:event_id, :webhook_id, :attempt, :status_code, :error, :duration_ms, :success)"
)


def deliver_webhook(postgres: PostgresResource, event: Event, settings: WebhookSettings, http: httpx.Client) -> Result:
    webhook_id = require(event.payload, "webhook_id", int, "the id of a row in webhooks")
    name = require(event.payload, "event", str, "the event name given to the receiver")
    if not name.strip():
        raise InvalidEvent("'event' must not be empty")
    ids = {"event_id": event.id, "webhook_id": webhook_id}
    with postgres.begin() as conn:
        hook = conn.execute(_HOOK_SQL, {"id": webhook_id}).first()
        done = conn.execute(_DONE_SQL, ids).all() if hook else []
    if hook is None:
        return Result("failed", f"webhook {webhook_id} does not exist; nothing sent")
    if not hook.active:
        return Result("failed", f"webhook {webhook_id} is inactive; nothing sent")
    if hook.events and name not in hook.events:
        return Result("ignored", f"webhook {webhook_id} does not subscribe to {name!r}")
    if any(d.success for d in done):
        return Result("delivered")

    body = json.dumps({"id": event.id, "event": name, "data": event.payload.get("data")},
                      separators=(",", ":"), default=str).encode()
    headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(hook.secret, body),
               EVENT_HEADER: name, DELIVERY_HEADER: str(event.id)}
    attempt = len(done)
    error = done[-1].error if done else "not attempted"
    final = bool(done) and not _retryable(done[-1].status_code, done[-1].error)
    made = 0
    while not final and attempt < settings.attempts:
        if attempt:
            time.sleep(backoff_delay(settings.backoff_seconds, attempt))
        attempt += 1
        made += 1
        status, error, duration_ms = _post(http, hook.url, body, headers, settings.timeout_seconds)
        success = status is not None and status < 300
        with postgres.begin() as conn:
            conn.execute(_RECORD_SQL, ids | {"attempt": attempt, "status_code": status, "error": error,
                                             "duration_ms": duration_ms, "success": success})
        if success:
            return Result("delivered", counts={"webhook_attempts": made})
        final = not _retryable(status, error)
    reason = f"webhook {webhook_id}: {error} after {attempt} attempt(s)" + (f" {NOT_RETRIED}" if final else "")
    with postgres.begin() as conn:
        dead_letter(conn, source="webhook", dedup_key=f"webhook:{event.id}:{webhook_id}", error=reason,
                    attempts=attempt, payload={"event_id": event.id, "name": event.name, "payload": event.payload})
    return Result("failed", reason, counts={"webhook_attempts": made})


def _post(http: httpx.Client, url: str, body: bytes, headers: dict,
          timeout: float) -> tuple[int | None, str | None, int]:
    """(status code or None, error or None, duration in ms). Errors name the failure, never the URL."""
    started = time.perf_counter()
    try:
        response = http.post(url, content=body, headers=headers, timeout=timeout)
        status, error = response.status_code, None if response.status_code < 300 else f"HTTP {response.status_code}"
    except httpx.TransportError as exc:
        status, error = None, type(exc).__name__
    except httpx.HTTPError as exc:  # e.g. an invalid URL: no retry can fix it
        status, error = None, f"{type(exc).__name__} {NOT_RETRIED}"
    return status, error, round((time.perf_counter() - started) * 1000)


def _retryable(status: int | None, error: str | None) -> bool:
    if error and error.endswith(NOT_RETRIED):
        return False
    return retryable_status(status)
