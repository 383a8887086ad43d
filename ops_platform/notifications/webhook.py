"""Outgoing webhooks: the Standard Webhooks signature (https://www.standardwebhooks.com) and the generic
`webhook` notification channel. The events outbox's `webhook/send` signs the same way.

Headers of every outgoing webhook:
- `webhook-id`: the message id, the same on every retry of one message (receivers dedup on it);
- `webhook-timestamp`: Unix seconds of this attempt (receivers reject old ones: replays);
- `webhook-signature`: `v1,<base64 HMAC-SHA256 of "{id}.{timestamp}.{body}">`;
- `X-Ops-Signature`: `sha256=<hex HMAC-SHA256 of the body>`, the older scheme, kept for receivers that
  still check it (it does not protect against replays).

The secret: `whsec_<base64>` is used as Standard Webhooks defines it (the key is the decoded bytes); any
other secret is a raw key, its UTF-8 bytes (a receiver verifies with `Webhook(secret.encode())`, or with
`Webhook("whsec_" + base64(secret))`).
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection
from standardwebhooks import Webhook

from ops_platform.notifications.channels import SIGNATURE_HEADER, sign
from ops_platform.outbound.http import RetryingHttp

SECRET_PREFIX = "whsec_"


def webhook_key(secret: str) -> str | bytes:
    """The Standard Webhooks key of a secret: `whsec_<base64>` as the standard defines it, any other string raw."""
    return secret if secret.startswith(SECRET_PREFIX) else secret.encode()


def signed_headers(secret: str, message_id: str, body: bytes) -> dict[str, str]:
    """The signature headers (see the module) for one attempt to send `body` (UTF-8 JSON), timestamped now.
    Raises standardwebhooks' EmptyWebhookSecretError for an empty secret."""
    key = webhook_key(secret)
    now = datetime.now(UTC)
    return {"webhook-id": message_id, "webhook-timestamp": str(int(now.timestamp())),
            "webhook-signature": Webhook(key).sign(message_id, now, body.decode()),
            SIGNATURE_HEADER: sign(secret, body)}


class WebhookChannel:
    """A signed JSON POST through the one retry rule (`RetryingHttp`); message id `notification:{id}:{name}`."""

    def __init__(self, url: str, secret: str, attempts: int = 3, backoff_seconds: float = 1.0,
                 timeout_seconds: float = 10.0, name: str = "webhook"):
        self.name, self.url, self._secret = name, url, secret
        self._http = RetryingHttp(name, attempts, backoff_seconds, timeout_seconds, secrets=[secret])

    def deliver(self, notification_id: int, payload: dict[str, Any], conn: Connection) -> None:
        body = json.dumps(payload, default=str, separators=(",", ":")).encode()
        message_id = f"notification:{notification_id}:{self.name}"
        self._http.post(self.url, content=body,
                        headers={"Content-Type": "application/json",
                                 "X-Ops-Dedup-Key": str(payload.get("dedup_key", ""))},
                        fresh_headers=lambda: signed_headers(self._secret, message_id, body))

    def close(self) -> None:
        self._http.close()
