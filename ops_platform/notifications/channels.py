"""Channels behind one interface: `deliver(notification_id, payload, conn)` or raise DeliveryError."""

from __future__ import annotations

import hashlib
import hmac
import json
import random
import time
from typing import Any, Protocol

import httpx
from sqlalchemy import Connection, text

SIGNATURE_HEADER = "X-Ops-Signature"


class DeliveryError(RuntimeError):
    def __init__(self, message: str, attempts: int):
        super().__init__(message)
        self.attempts = attempts


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


class WebhookChannel:
    """A signed JSON POST. 5xx, 429 and network errors are retried with exponential backoff and
    jitter; other 4xx are final at once (retrying a rejected request only repeats the rejection)."""

    def __init__(self, url: str, secret: str, attempts: int = 3, backoff_seconds: float = 1.0,
                 timeout_seconds: float = 10.0, name: str = "webhook"):
        self.name, self.url, self._secret = name, url, secret
        self.attempts, self.backoff_seconds, self.timeout_seconds = attempts, backoff_seconds, timeout_seconds
        self._client: httpx.Client | None = None

    def deliver(self, notification_id: int, payload: dict[str, Any], conn: Connection) -> None:
        body = json.dumps(payload, default=str, separators=(",", ":")).encode()
        headers = {"Content-Type": "application/json", SIGNATURE_HEADER: sign(self._secret, body),
                   "X-Ops-Dedup-Key": str(payload.get("dedup_key", ""))}
        error = "not attempted"
        for attempt in range(1, self.attempts + 1):
            try:
                response = self._http().post(self.url, content=body, headers=headers)
                if response.status_code < 300:
                    return
                error = f"HTTP {response.status_code}"
                if not retryable_status(response.status_code):
                    raise DeliveryError(f"{self.name}: {error} {NOT_RETRIED}", attempt)
            except httpx.TransportError as exc:
                error = f"{type(exc).__name__}"
            if attempt < self.attempts:
                time.sleep(backoff_delay(self.backoff_seconds, attempt))
        raise DeliveryError(f"{self.name}: {error} after {self.attempts} attempts", self.attempts)

    def _http(self) -> httpx.Client:
        """One client per channel object: building a client (its TLS context) costs more than a request."""
        if self._client is None:
            self._client = httpx.Client(timeout=self.timeout_seconds)
        return self._client

    def close(self) -> None:
        if self._client is not None:
            self._client.close()
            self._client = None


# Ends the error of a failure no retry can fix; the retry queue reads it to dead-letter at once.
NOT_RETRIED = "(not retried)"


def retryable_status(status: int | None) -> bool:
    """Whether a failed HTTP call may succeed if repeated: network errors (None), 408, 425, 429 and 5xx.
    Any other 4xx is the provider refusing the request itself; repeating it only repeats the refusal."""
    return status is None or status in (408, 425, 429) or status >= 500


def backoff_delay(base_seconds: float, attempt: int, cap_seconds: float = 60.0) -> float:
    """base·2^(attempt−1), capped, with ±25% jitter so retries of many senders spread out."""
    return min(base_seconds * 2 ** (attempt - 1), cap_seconds) * random.uniform(0.75, 1.25)
