"""What a retry job does: a registry of job_name → handler(payload, resources).

A handler returns to succeed and raises to fail. `PermanentError` means another attempt cannot
help (an unknown job name, a bad payload, a request the other side rejected): the job is dead at
once. Any other exception is transient (network, 5xx, 429, timeouts) and retried with backoff.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx

from ops_platform.outbound.http import wait_hint
from ops_platform.outbound.retry import retryable_status
from ops_platform.resources.postgres import PostgresResource

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


class PermanentError(RuntimeError):
    """Retrying cannot help: the job goes to the dead letters now, not after 5 attempts."""


class TransientError(RuntimeError):
    """Worth another attempt later: after the queue's backoff, and not before `retry_at` (UTC) when the
    other side named a time (its wait hint)."""

    def __init__(self, message: str, retry_at: datetime | None = None):
        super().__init__(message)
        self.retry_at = retry_at


class Deferred(RuntimeError):
    """Not now, and not a failure (a control says wait): the job waits without using an attempt."""

    DELAY_SECONDS = 300


@dataclass(frozen=True)
class HandlerResources:
    postgres: PostgresResource
    notifier: Any  # the NotifierResource; the handler that uses it (notifications/redelivery.py) knows its type
    http_timeout_seconds: float = 10.0


Handler = Callable[[dict[str, Any], HandlerResources], None]
HANDLERS: dict[str, Handler] = {}


def handler(job_name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        if job_name in HANDLERS:
            raise ValueError(f"a retry handler for {job_name!r} is already registered")
        HANDLERS[job_name] = fn
        return fn

    return register


def handler_for(job_name: str) -> Handler:
    try:
        return HANDLERS[job_name]
    except KeyError:
        raise PermanentError(f"no handler for job {job_name!r} (known: {', '.join(sorted(HANDLERS))})") from None


def payload_field(payload: dict[str, Any], name: str, kind: type) -> Any:
    value = payload.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise PermanentError(f"payload field {name!r} must be a {kind.__name__}, got {value!r}")
    return value


@handler("http.request")
def http_request(payload: dict[str, Any], resources: HandlerResources) -> None:
    """A generic outbound call: 2xx succeeds; 5xx, 408, 425, 429 and network errors are retried (not before
    the wait the server asked for, `http.wait_hint`); any other status is final. Errors name the URL without query or credentials."""
    method = payload_field(payload, "method", str).upper()
    if method not in HTTP_METHODS:
        raise PermanentError(f"payload field 'method' must be one of {', '.join(HTTP_METHODS)}, got {method!r}")
    try:
        url = httpx.URL(payload_field(payload, "url", str))
    except httpx.InvalidURL as err:
        raise PermanentError(f"payload field 'url' is not a URL: {err}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise PermanentError("payload field 'url' must be an absolute http(s) URL")
    headers = payload.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise PermanentError("payload field 'headers' must map names to strings")
    where = f"{method} {url.scheme}://{url.host}{f':{url.port}' if url.port else ''}{url.path}"
    try:
        response = httpx.request(method, url, json=payload.get("json"), headers=headers,
                                 timeout=resources.http_timeout_seconds)
    except httpx.TransportError as err:
        raise TransientError(f"{where}: {type(err).__name__}") from None
    status = response.status_code
    if 200 <= status < 300:
        return
    if retryable_status(status):
        hint = wait_hint(response)
        raise TransientError(f"{where}: HTTP {status}", datetime.now(UTC) + timedelta(seconds=hint) if hint else None)
    raise PermanentError(f"{where}: HTTP {status} (not retried)")
