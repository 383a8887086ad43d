"""The HTTP client every source shares: rate limit, retries, error categories, and `api_calls`.

Each attempt takes a slot of the source's shared rate limit (rate_limit.py), makes one request and
records it in `api_calls` (path only: no query string, host or token), so the repeated-failures and
API-volume watchers see real traffic. Retries follow the one rule of outgoing calls
(outbound/retry.py, tenacity): the seed's 2 s · 2^(n−1) backoff capped at 60 s, 5 attempts, and a
wait the provider asks for (`provider_wait`: `Retry-After`, `X-RateLimit-Reset`, HubSpot's window)
replacing a shorter one.

Failures end in one `SourceFailed` whose `category` is the seed's error category
(framework/error_categories.py):
- `auth` (401, 403): not retried; the sync alerts at once (WARN).
- `transient` (no answer, a timeout) and `external_api` (429, 5xx, another 4xx): retried with backoff as far
  as the rule allows. No answer or a 5xx after every attempt is `unreachable`: 3 such runs in a row alert.
- `validation` (an answer that is not the provider's shape): not retried; logged, INFO.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import httpx

from ops_platform.framework.error_categories import AUTH, EXTERNAL_API, TRANSIENT, VALIDATION
from ops_platform.monitoring.api_usage import ApiCall, record_api_calls
from ops_platform.outbound.http import wait_hint
from ops_platform.outbound.retry import DeliveryError, Final, Retryable, RetryRule, retryable_status
from ops_platform.resources.postgres import PostgresResource
from ops_platform.sources.rate_limit import RateLimit

SEED_RETRY_RULE = RetryRule(attempts=5, backoff_seconds=2.0)  # seed 003 RETRY_POLICY


class SourceFailed(RuntimeError):
    """A source call gave up. `category`: AUTH, TRANSIENT, EXTERNAL_API or VALIDATION; `unreachable`: no answer
    or a 5xx to the last attempt. The message names the source, the path and the status, never a token or a host."""

    def __init__(self, message: str, category: str, unreachable: bool = False):
        super().__init__(message)
        self.category, self.unreachable = category, unreachable


class _AuthRefused(Exception):
    """Raised inside an attempt so that the retry rule lets it through untouched: auth is never retried."""


@dataclass
class SourceClient:
    source: str  # the API's name in api_calls, e.g. notion
    base_url: str
    headers: dict[str, str]
    postgres: PostgresResource
    limit: RateLimit | None = None
    rule: RetryRule = SEED_RETRY_RULE
    timeout_seconds: float = 10.0
    _http: httpx.Client = field(init=False, repr=False)

    def __post_init__(self):
        self._http = httpx.Client(base_url=self.base_url.rstrip("/"), headers=self.headers,
                                  timeout=self.timeout_seconds)

    def __enter__(self) -> SourceClient:
        return self

    def __exit__(self, *exc) -> None:
        self._http.close()

    def call(self, method: str, path: str, *, params: dict | None = None, json: Any = None) -> dict:
        """One JSON object from `method path`, retried by the rule. Raises SourceFailed."""
        last_status: list[int | None] = [None]

        def attempt() -> dict:
            if self.limit:
                self.limit.acquire(self.postgres)
            started = time.perf_counter()
            at = datetime.now(UTC)
            try:
                response = self._http.request(method, path, params=params, json=json)
            except httpx.TransportError as err:
                self._record(at, path, started, None, f"{type(err).__name__}: no answer")
                last_status[0] = None
                raise Retryable(type(err).__name__) from None
            status = last_status[0] = response.status_code
            if status < 300:
                try:
                    body = response.json()
                except ValueError:
                    body = None
                self._record(at, path, started, status, None if isinstance(body, dict) else "not a JSON object")
                if not isinstance(body, dict):
                    raise SourceFailed(f"{self.source} {path}: the answer is not a JSON object", VALIDATION)
                return body
            error = f"HTTP {status}{_reason(response)}"
            self._record(at, path, started, status, error)
            if status in (401, 403):
                raise _AuthRefused(error)
            if retryable_status(status):
                raise Retryable(error, status, provider_wait(response))
            raise Final(error, status)

        try:
            return self.rule.call(attempt, f"{self.source} {method} {path}")
        except _AuthRefused as err:
            raise SourceFailed(f"{self.source} {path}: {err} (credentials refused; not retried)", AUTH) from None
        except DeliveryError as err:
            status = last_status[0]
            raise SourceFailed(str(err), TRANSIENT if status is None else EXTERNAL_API,
                               unreachable=status is None or status >= 500) from None

    def _record(self, at: datetime, path: str, started: float, status: int | None, error: str | None) -> None:
        call = ApiCall(at, self.source, path, error is None, status, round((time.perf_counter() - started) * 1000, 1),
                       error)
        with self.postgres.begin() as conn:
            record_api_calls(conn, [call])


def provider_wait(response: httpx.Response) -> float | None:
    """The wait the provider asks for: `Retry-After` and the reset headers (outbound/http.py), else, for
    HubSpot, which sends neither, its rolling window's length once `X-HubSpot-RateLimit-Remaining` is 0."""
    hint = wait_hint(response)
    interval = response.headers.get("X-HubSpot-RateLimit-Interval-Milliseconds", "")
    if hint is None and response.headers.get("X-HubSpot-RateLimit-Remaining") == "0" and interval.isdigit():
        return int(interval) / 1000
    return hint


def _reason(response: httpx.Response) -> str:
    """The provider's short reason: Notion `code`/`message`, HubSpot `category`/`message`, n8n `message`."""
    try:
        body = response.json()
    except ValueError:
        return ""
    if not isinstance(body, dict):
        return ""
    reason = body.get("message") or body.get("code") or body.get("category")
    return f": {str(reason)[:200]}" if reason else ""
