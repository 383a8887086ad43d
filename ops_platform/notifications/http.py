"""One retrying HTTP client per channel object, shared by the provider channels (chat, Twilio, email API).

5xx, 429 and network errors are retried with exponential backoff and jitter (a numeric Retry-After is
honoured up to the cap); other 4xx are final at once. Error texts name the channel and the status, never
the URL (Slack/Teams URLs and Telegram's path embed a secret) and never a secret value.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from typing import Any

import httpx

from ops_platform.notifications.channels import NOT_RETRIED, DeliveryError, backoff_delay, retryable_status

RETRY_AFTER_CAP_SECONDS = 60.0
DETAIL_CHARS = 200


class RetryingHttp:
    def __init__(self, name: str, attempts: int = 3, backoff_seconds: float = 1.0, timeout_seconds: float = 10.0,
                 auth: tuple[str, str] | None = None, secrets: Iterable[str | None] = ()):
        self.name, self.attempts, self.backoff_seconds = name, max(1, attempts), backoff_seconds
        self._secrets = [s for s in secrets if s]
        self._client = httpx.Client(timeout=timeout_seconds, auth=auth)

    def post(self, url: str, **request: Any) -> httpx.Response:
        """The first 2xx response; DeliveryError(message, attempts) when the provider refuses or stays down."""
        error = "not attempted"
        for attempt in range(1, self.attempts + 1):
            delay = backoff_delay(self.backoff_seconds, attempt)
            try:
                response = self._client.post(url, **request)
                if response.status_code < 300:
                    return response
                error = f"HTTP {response.status_code}{self._detail(response)}"
                if not retryable_status(response.status_code):
                    raise DeliveryError(f"{self.name}: {error} {NOT_RETRIED}", attempt)
                delay = max(delay, _retry_after(response))
            except httpx.TransportError as exc:
                error = type(exc).__name__
            except httpx.HTTPError as exc:  # e.g. an invalid URL: no retry can fix it
                raise DeliveryError(f"{self.name}: {type(exc).__name__} {NOT_RETRIED}", attempt) from None
            if attempt < self.attempts:
                time.sleep(delay)
        raise DeliveryError(f"{self.name}: {error} after {self.attempts} attempts", self.attempts)

    def close(self) -> None:
        self._client.close()

    def _detail(self, response: httpx.Response) -> str:
        """The provider's own short reason (Twilio `message`, Telegram `description`, Resend `message`)."""
        try:
            body = response.json()
        except ValueError:
            return ""
        reason = body.get("message") or body.get("description") if isinstance(body, dict) else None
        if not isinstance(reason, str) or not reason:
            return ""
        for secret in self._secrets:
            reason = reason.replace(secret, "***")
        return f": {reason[:DETAIL_CHARS]}"


def _retry_after(response: httpx.Response) -> float:
    try:
        return min(float(response.headers.get("Retry-After", 0)), RETRY_AFTER_CAP_SECONDS)
    except ValueError:  # an HTTP date: fall back to our own backoff
        return 0.0
