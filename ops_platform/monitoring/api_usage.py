"""What API clients write for the watchers: their calls (api_calls) and their rate-limit window (rate_limit_usage)."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime

from sqlalchemy import Connection, text


@dataclass(frozen=True)
class ApiCall:
    ts: datetime
    source: str  # the API, e.g. hubspot
    endpoint: str  # the action, e.g. /crm/v3/objects/contacts (no query string: it may hold a token)
    ok: bool
    status_code: int | None = None
    latency_ms: float | None = None
    error: str | None = None


def record_api_calls(conn: Connection, calls: Sequence[ApiCall]) -> int:
    """Insert a batch of calls in one statement."""
    if not calls:
        return 0
    return conn.execute(text(
        "INSERT INTO api_calls (ts, source, endpoint, ok, status_code, latency_ms, error) "
        "SELECT ts, source, endpoint, ok, status_code, latency_ms, error FROM jsonb_to_recordset(CAST(:rows AS jsonb)) "
        "AS c(ts timestamptz, source text, endpoint text, ok boolean, status_code int, latency_ms float8, error text)"
    ), {"rows": json.dumps([asdict(c) for c in calls], default=str)}).rowcount


def record_rate_limit(conn: Connection, bucket: str, used: int, limit_value: int, window_start: datetime,
                      window_seconds: int) -> None:
    """The bucket's current window, replacing the previous one."""
    conn.execute(text(
        "INSERT INTO rate_limit_usage (bucket, used, limit_value, window_start, window_seconds) "
        "VALUES (:bucket, :used, :limit_value, :window_start, :window_seconds) "
        "ON CONFLICT (bucket) DO UPDATE SET used = EXCLUDED.used, limit_value = EXCLUDED.limit_value, "
        "window_start = EXCLUDED.window_start, window_seconds = EXCLUDED.window_seconds"
    ), {"bucket": bucket, "used": used, "limit_value": limit_value, "window_start": window_start,
        "window_seconds": window_seconds})
