"""`webhook/send` (seed 001): a signed POST to a configured webhook, each attempt logged, then a dead letter.

Payload: {"webhook_id": 7, "event": "user.created", "data": {...}}. The URL and secret come from the
`webhooks` row, never from the event; the secret signs each attempt (Standard Webhooks, message id
`webhook:{event_id}:{webhook_id}`, see notifications/webhook.py) and appears nowhere else. Retries follow
the one `RetryRule` of every outgoing call: 5xx, 429 and network errors with exponential backoff and
jitter, a receiver's wait hint obeyed; other 4xx (and 3xx) are final at once. Attempts already logged
count, so a retried run resumes. A wait hint over the cap hands the delivery to the retry queue
(`webhook.redeliver`, run_at = now + the hint): the event is recorded 'failed' with that in its error,
and becomes 'delivered' when the retry job gets it through.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import httpx
from sqlalchemy import text

from ops_platform.events.outbox import Event, InvalidEvent, Result, require
from ops_platform.framework.dead_letters import dead_letter
from ops_platform.outbound.retry import DeliveryError
from ops_platform.outbound.http import post_once
from ops_platform.outbound.retry import AttemptFailed, Final, RetryRule
from ops_platform.notifications.webhook import signed_headers
from ops_platform.resources.postgres import PostgresResource
from ops_platform.retry_queue.handlers import HandlerResources, PermanentError, TransientError, handler
from ops_platform.retry_queue.queue import enqueue

WEBHOOK_SEND = "webhook/send"
EVENT_NAMES = (WEBHOOK_SEND,)
EVENT_HEADER = "X-Ops-Event"
DELIVERY_HEADER = "X-Ops-Delivery"  # the outbox event id: receivers can drop a delivery they already have
WEBHOOK_REDELIVER = "webhook.redeliver"  # the retry job of a delivery whose receiver asked for a long wait


@dataclass(frozen=True)
class WebhookSettings:
    attempts: int = 3  # seed 001: max 3 attempts
    backoff_seconds: float = 1.0  # base of the exponential backoff: 1 s, then 2 s (±25% jitter)
    timeout_seconds: float = 10.0

    def rule(self) -> RetryRule:
        return RetryRule(self.attempts, self.backoff_seconds)


_HOOK_SQL = text("SELECT id, url, secret, events, active FROM webhooks WHERE id = :id")
_DONE_SQL = text("SELECT attempt, status_code, error, success, retryable FROM webhook_deliveries"
                 " WHERE event_id = :event_id AND webhook_id = :webhook_id ORDER BY attempt")
_RECORD_SQL = text(
    "INSERT INTO webhook_deliveries (event_id, webhook_id, attempt, status_code, error, duration_ms, success, retryable)"
    " VALUES (:event_id, :webhook_id, :attempt, :status_code, :error, :duration_ms, :success, :retryable)"
)


def deliver_webhook(postgres: PostgresResource, event: Event, settings: WebhookSettings, http: httpx.Client) -> Result:
    """Deliver one `webhook/send` event (see the module). Raises InvalidEvent for a malformed payload."""
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
    key = f"webhook:{event.id}:{webhook_id}"  # also the Standard Webhooks message id: the same on every retry
    headers = {"Content-Type": "application/json", EVENT_HEADER: name, DELIVERY_HEADER: str(event.id)}
    made = 0

    def attempt() -> None:
        nonlocal made
        made += 1
        started, status, error, retryable = time.perf_counter(), None, None, None
        try:
            status = post_once(http, hook.url, content=body, timeout=settings.timeout_seconds,
                               headers=headers | signed_headers(hook.secret, key, body)).status_code
        except AttemptFailed as err:
            status, error, retryable = err.status, err.error, not isinstance(err, Final)
            raise
        finally:
            with postgres.begin() as conn:
                conn.execute(_RECORD_SQL, ids | {"attempt": len(done) + made, "status_code": status, "error": error,
                                                 "duration_ms": round((time.perf_counter() - started) * 1000),
                                                 "success": error is None, "retryable": retryable})

    attempts, error = len(done), done[-1].error if done else "not attempted"
    final = bool(done) and done[-1].retryable is False
    if not final and attempts < settings.attempts:
        try:
            settings.rule().call(attempt, f"webhook {webhook_id}", done=len(done))
            return Result("delivered", counts={"webhook_attempts": made})
        except DeliveryError as err:
            attempts, final = err.attempts, not err.retryable
            if err.retry_at and not final and attempts < settings.attempts:
                return _hand_over(postgres, event, webhook_id, key, str(err), err.retry_at, made)
            with postgres.begin() as conn:
                error = conn.execute(_DONE_SQL, ids).all()[-1].error
    reason = f"webhook {webhook_id}: {error} after {attempts} attempt(s)" + (" (not retried)" if final else "")
    with postgres.begin() as conn:
        dead_letter(conn, source="webhook", dedup_key=key, error=reason, attempts=attempts,
                    payload={"event_id": event.id, "name": event.name, "payload": event.payload})
    return Result("failed", reason, counts={"webhook_attempts": made})


def _hand_over(postgres: PostgresResource, event: Event, webhook_id: int, key: str, error: str,
               retry_at: datetime, made: int) -> Result:
    """The receiver asked for a longer wait than a run sleeps: the retry queue sends it at `retry_at`."""
    with postgres.begin() as conn:
        enqueue(conn, WEBHOOK_REDELIVER, {"event_id": event.id, "webhook_id": webhook_id}, dedup_key=key,
                run_at=retry_at)
    return Result("failed", f"{error}; the retry queue sends it at {retry_at:%Y-%m-%d %H:%M:%S} UTC",
                  counts={"webhook_attempts": made, "webhooks_to_retry_queue": 1}, retry_at=retry_at)


@handler(WEBHOOK_REDELIVER)
def redeliver_webhook(payload: dict[str, Any], resources: HandlerResources) -> None:
    """Retry job {"event_id", "webhook_id"}: the delivery again, resuming from its logged attempts. Delivered
    → the event's `events_handled` row becomes 'delivered'; out of attempts → dead-lettered as in a run
    (the job completes: the dead letter keeps the work); another long wait → the job waits again."""
    event_id = payload.get("event_id")
    with resources.postgres.begin() as conn:
        row = conn.execute(text("SELECT id, name, payload FROM events_outbox WHERE id = :id"), {"id": event_id}).first()
    if row is None:
        raise PermanentError(f"event {event_id!r} is not in events_outbox")
    with httpx.Client() as http:
        result = deliver_webhook(resources.postgres, Event(row.id, row.name, row.payload), WebhookSettings(), http)
    if result.retry_at:
        raise TransientError(result.error or "asked to wait", result.retry_at)
    with resources.postgres.begin() as conn:
        conn.execute(text("UPDATE events_handled SET outcome = :outcome, error = :error WHERE event_id = :id"),
                     {"id": row.id, "outcome": result.outcome, "error": result.error})

