"""`email/send` and `email/send-batch` (seed 001): emails sent in batches of 10 through the EmailSender.

Payloads: {"to": "a@x.org" | [...], "subject": "...", "html": "...", "text": "..."} for one email,
{"emails": [that, ...]} for many. Every email gets an `email_deliveries` row (event id, index) before
anything is sent and its outcome after; the key `event:<id>:<index>` travels with it as the provider's
idempotency key (the outbox fallback stores it as `ref`), so a retried batch never sends one twice.
An invalid email is recorded with its reason and the others are still sent.
"""

from __future__ import annotations

import json
from dataclasses import replace
from typing import Any

from sqlalchemy import text

from ops_platform.events.outbox import Event, InvalidEvent, Result, json_type, require
from ops_platform.framework.dead_letters import dead_letter
from ops_platform.outbound.retry import DeliveryError
from ops_platform.notifications.email import Email
from ops_platform.notifications.transports import ChannelsResource
from ops_platform.resources.postgres import PostgresResource

EMAIL_SEND = "email/send"
EMAIL_SEND_BATCH = "email/send-batch"
EVENT_NAMES = (EMAIL_SEND, EMAIL_SEND_BATCH)
BATCH_SIZE = 10  # seed 001: batches of 10
_BAD_ADDRESS_CHARS = set("\r\n,;<> ")

_RECORD_SQL = text("""
INSERT INTO email_deliveries (event_id, idx, recipients, subject, status, error)
SELECT :event_id, r.idx, r.recipients, r.subject, r.status, r.error
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS r(idx int, recipients text[], subject text, status text, error text)
ON CONFLICT (event_id, idx) DO NOTHING
""")
_PENDING_SQL = text("SELECT idx FROM email_deliveries WHERE event_id = :event_id AND status = 'pending' ORDER BY idx")
_SENT_SQL = text("""
UPDATE email_deliveries d SET status = 'sent', provider_id = u.provider_id, error = NULL
FROM unnest(CAST(:idx AS int[]), CAST(:provider_ids AS text[])) AS u(idx, provider_id)
WHERE d.event_id = :event_id AND d.idx = u.idx AND d.status = 'pending'
""")
_FAILED_SQL = text("UPDATE email_deliveries SET status = 'failed', error = :error"
                   " WHERE event_id = :event_id AND idx = ANY(:idx) AND status = 'pending'")
_SUMMARY_SQL = text("SELECT status, count(*) AS n, (array_agg(error ORDER BY idx))[1:3] AS errors"
                    " FROM email_deliveries WHERE event_id = :event_id GROUP BY status")


def send_emails(postgres: PostgresResource, channels: ChannelsResource, event: Event) -> Result:
    """Record, send in batches of BATCH_SIZE, record again; the outcome covers every email of the event."""
    items = parse_emails(event)
    with postgres.begin() as conn:
        rows = json.dumps([_row(i, item) for i, item in enumerate(items)])
        conn.execute(_RECORD_SQL, {"event_id": event.id, "rows": rows})
        pending = [row.idx for row in conn.execute(_PENDING_SQL, {"event_id": event.id})]
    counts = {"emails_sent": 0, "email_batches": 0}
    for start in range(0, len(pending), BATCH_SIZE):
        chunk = pending[start:start + BATCH_SIZE]
        counts["email_batches"] += 1
        try:
            with postgres.begin() as conn:  # the outbox fallback writes in this same transaction
                sender = channels.email_sender(conn)
                try:
                    provider_ids = sender.send_batch([items[i] for i in chunk])
                finally:
                    sender.close()
                conn.execute(_SENT_SQL, {"event_id": event.id, "idx": chunk, "provider_ids": provider_ids})
            counts["emails_sent"] += len(chunk)
        except DeliveryError as err:
            with postgres.begin() as conn:
                conn.execute(_FAILED_SQL, {"event_id": event.id, "idx": chunk, "error": str(err)})
                dead_letter(conn, source="email", dedup_key=f"email:{event.id}:{chunk[0]}-{chunk[-1]}", error=str(err),
                            attempts=err.attempts, payload={"event_id": event.id, "indexes": chunk})
    return replace(_outcome(postgres, event), counts=counts)


def parse_emails(event: Event) -> list[Email | str]:
    """One Email per item, or the reason the item cannot be sent. A batch without `emails` is invalid."""
    if event.name == EMAIL_SEND:
        items = [event.payload]
    else:
        items = require(event.payload, "emails", list, "an array of {to, subject, html}")
        if not items:
            raise InvalidEvent("'emails' is empty")
    parsed: list[Email | str] = []
    for idx, item in enumerate(items):
        try:
            parsed.append(_email(item, key=f"event:{event.id}:{idx}"))
        except InvalidEvent as err:
            parsed.append(str(err) if event.name == EMAIL_SEND else f"emails[{idx}]: {err}")
    return parsed


def _email(item: Any, key: str) -> Email:
    to = require(item, "to", (str, list), "an email address or an array of them")
    to = [to] if isinstance(to, str) else to
    if not to:
        raise InvalidEvent("'to' is empty")
    bad = [a if isinstance(a, str) else json_type(a) for a in to
           if not isinstance(a, str) or "@" not in a or _BAD_ADDRESS_CHARS & set(a)]
    if bad:
        raise InvalidEvent(f"not an email address: {', '.join(map(repr, bad))}")
    subject = require(item, "subject", str, "a string")
    if not subject.strip():
        raise InvalidEvent("'subject' is empty")
    html, body = item.get("html"), item.get("text")
    for name, value in (("html", html), ("text", body)):
        if value is not None and not isinstance(value, str):
            raise InvalidEvent(f"{name!r} must be a string, got {json_type(value)}")
    if not html and not body:
        raise InvalidEvent("give 'html' or 'text'")
    return Email(to=tuple(to), subject=subject, text=body or "", html=html or None, key=key)


def _row(idx: int, item: Email | str) -> dict:
    if isinstance(item, Email):
        return {"idx": idx, "recipients": list(item.to), "subject": item.subject, "status": "pending", "error": None}
    return {"idx": idx, "recipients": [], "subject": "", "status": "invalid", "error": item}


def _outcome(postgres: PostgresResource, event: Event) -> Result:
    with postgres.begin() as conn:
        by_status = {r.status: r for r in conn.execute(_SUMMARY_SQL, {"event_id": event.id})}
    total = sum(r.n for r in by_status.values())
    bad = [by_status[s] for s in ("invalid", "failed") if s in by_status]
    if not bad:
        return Result("delivered")
    errors = "; ".join(dict.fromkeys(e for r in bad for e in r.errors if e))  # a refused batch: one reason
    if "invalid" in by_status and by_status["invalid"].n == total:
        return Result("invalid", errors)
    not_sent = sum(r.n for r in bad)
    return Result("failed", f"{not_sent} of {total} emails not sent: {errors}")
