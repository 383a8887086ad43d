"""Channels behind one interface: `deliver(notification_id, payload, conn)` or raise outbound.retry.DeliveryError."""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import Any, Protocol

from sqlalchemy import Connection, text

SIGNATURE_HEADER = "X-Ops-Signature"


class Channel(Protocol):
    name: str

    def deliver(self, notification_id: int, payload: dict[str, Any], conn: Connection) -> None: ...


class OutboxChannel:
    """The embedded default: the message is written to the outbox table and leaves nothing."""

    def __init__(self, name: str = "outbox", note: str | None = None):
        self.name, self.note = name, note  # note: why a real channel fell back here

    def deliver(self, notification_id: int, payload: dict[str, Any], conn: Connection) -> None:
        if self.note:
            payload = payload | {"outbox_note": self.note}
        conn.execute(
            text(
                "INSERT INTO outbox_messages (notification_id, channel, payload)"
                " VALUES (:id, :channel, CAST(:payload AS jsonb)) ON CONFLICT DO NOTHING"
            ),
            {"id": notification_id, "channel": self.name, "payload": json.dumps(payload, default=str)},
        )


def sign(secret: str, body: bytes) -> str:
    """`sha256=<hex>`: HMAC-SHA256 of the exact request body with the shared secret."""
    return "sha256=" + hmac.new(secret.encode(), body, hashlib.sha256).hexdigest()


def verify(secret: str, body: bytes, signature: str) -> bool:
    return hmac.compare_digest(sign(secret, body), signature)
