"""Outgoing HTTP: one attempt (`post_once`), the wait a provider asks for (`wait_hint`), and the retrying
client the provider channels share (`RetryingHttp`, chat, Twilio, email API, the generic webhook). Every
retry goes through `retry.RetryRule`, as do the events outbox's webhooks.

Error texts name the channel and the status, never the URL (Slack/Teams URLs and Telegram's path embed
a secret) and never a secret value.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from urllib.parse import urlsplit
from typing import Any

import httpx

from ops_platform.outbound.retry import Final, Retryable, RetryRule, retryable_status

DETAIL_CHARS = 200
EPOCH_SECONDS_FROM = 1_000_000_000  # a reset header this large is a Unix time, not a number of seconds


def wait_hint(response: httpx.Response) -> float | None:
    """Seconds the provider asks us to wait before trying again (≥ 0), or None when it says nothing.

    Read in this order: `Retry-After` as seconds or as an HTTP date (Slack, Twilio, Teams, most APIs);
    on a 429, Telegram's JSON body `{"parameters": {"retry_after": 3}}`, then `RateLimit-Reset` /
    `X-RateLimit-Reset` (seconds, or a Unix time when ≥ 10^9) and `X-RateLimit-Reset-After` (seconds).
    A value that does not parse counts as not given.
    """
    retry_after = response.headers.get("Retry-After")
    if retry_after is not None:
        return _seconds(retry_after, dates=True)
    if response.status_code != 429:
        return None
    try:
        body = response.json()
    except ValueError:
        body = None
    parameters = body.get("parameters") if isinstance(body, dict) else None
    if isinstance(parameters, dict) and isinstance(parameters.get("retry_after"), int | float):
        return max(0.0, float(parameters["retry_after"]))
    for header in ("RateLimit-Reset", "X-RateLimit-Reset", "X-RateLimit-Reset-After"):
        if header in response.headers:
            return _seconds(response.headers[header], dates=False)
    return None


def _seconds(value: str, dates: bool) -> float | None:
    try:
        number = float(value)
    except ValueError:
        if not dates:
            return None
        try:
            at = parsedate_to_datetime(value)
        except (TypeError, ValueError):
            return None
        return max(0.0, (at - datetime.now(UTC)).total_seconds())
    if number >= EPOCH_SECONDS_FROM:
        number -= datetime.now(UTC).timestamp()
    return max(0.0, number)


def safe_url(url: str) -> str:
    """scheme://host[:port]/path: what may be shown of a URL."""
    parts = urlsplit(url)
    host = parts.hostname or ""
    port = f":{parts.port}" if parts.port else ""
    return f"{parts.scheme}://{host}{port}{parts.path}"


def post_once(client: httpx.Client, url: str, detail: Callable[[httpx.Response], str] = lambda r: "",
              **request: Any) -> httpx.Response:
    """One POST (`request`: httpx's keyword arguments). Returns a 2xx response; raises `Retryable` (network
    error, 408/425/429/5xx, with the provider's wait hint) or `Final` (an invalid URL, any other status).
    The error is `HTTP <status>` + `detail(response)`, or the exception's type name."""
    try:
        response = client.post(url, **request)
    except httpx.TransportError as exc:
        raise Retryable(type(exc).__name__) from None
    except httpx.HTTPError as exc:  # e.g. an invalid URL: no retry can fix it
        raise Final(type(exc).__name__) from None
    if response.status_code < 300:
        return response
    error = f"HTTP {response.status_code}{detail(response)}"
    if retryable_status(response.status_code):
        raise Retryable(error, response.status_code, wait_hint(response))
    raise Final(error, response.status_code)


class RetryingHttp:
    """One httpx client per channel object, its POSTs retried by the one `RetryRule`."""

    def __init__(self, name: str, attempts: int = 3, backoff_seconds: float = 1.0, timeout_seconds: float = 10.0,
                 auth: tuple[str, str] | None = None, secrets: Iterable[str | None] = ()):
        self.name, self.rule = name, RetryRule(max(1, attempts), backoff_seconds)
        self._secrets = [s for s in secrets if s]
        self._client = httpx.Client(timeout=timeout_seconds, auth=auth)

    def post(self, url: str, fresh_headers: Callable[[], dict[str, str]] | None = None,
             **request: Any) -> httpx.Response:
        """The first 2xx response; DeliveryError (see `RetryRule.call`) when the provider refuses or stays
        down. `fresh_headers` is called before each attempt (a signature over a new timestamp)."""

        def attempt() -> httpx.Response:
            headers = request.get("headers", {}) | (fresh_headers() if fresh_headers else {})
            return post_once(self._client, url, self._detail, **request | {"headers": headers})

        return self.rule.call(attempt, self.name)

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
