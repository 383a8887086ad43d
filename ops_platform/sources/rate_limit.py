"""A rate limit shared by every process: a sliding-window log kept in Postgres (`rate_limit_buckets`).

Dagster runs steps in separate processes, so a per-process counter lets two runs together go over a
provider's limit. Here each request first takes a *slot*, a start time, in one statement under the
bucket's row lock: the slot is now, or, when the last `limit` slots are already taken within the window,
the moment the oldest of them leaves it (plus `margin_seconds`), and never sooner than window/limit after
the previous slot (requests are paced, not sent in bursts). Slots only grow, so no window of
`window_seconds` holds more than `limit` of them, whichever process took them. The caller sleeps until
its slot. Pacing and `margin_seconds` (0.25 s) absorb the delay between a slot and the request reaching the
provider (a loaded machine, a new connection), so the limit holds where the provider counts: on arrival.

Each acquisition also records the bucket's current window in `rate_limit_usage` (monitoring/api_usage.py),
which the rate-limit watcher reads (≥ 80 % used → incident).

Limits (seed 003): Notion 3 requests/s; HubSpot 100 requests/10 s; n8n names none (its headers are obeyed
by the client instead).
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from ops_platform.monitoring.api_usage import record_rate_limit
from ops_platform.resources.postgres import PostgresResource

MARGIN_SECONDS = 0.25

_ENSURE_SQL = text("""
INSERT INTO rate_limit_buckets (bucket, limit_value, window_seconds) VALUES (:bucket, :limit, :window)
ON CONFLICT (bucket) DO UPDATE SET limit_value = EXCLUDED.limit_value, window_seconds = EXCLUDED.window_seconds
WHERE (rate_limit_buckets.limit_value, rate_limit_buckets.window_seconds) <> (EXCLUDED.limit_value, EXCLUDED.window_seconds)
""")

# The new slot: now, or when the limit-th newest slot leaves the window. The log keeps the newest `limit`.
_TAKE_SQL = text("""
WITH b AS (
    SELECT slots, clock_timestamp() AS now FROM rate_limit_buckets WHERE bucket = :bucket FOR UPDATE
), slot AS (
    SELECT greatest(now, CASE WHEN cardinality(slots) >= :limit
                              THEN slots[cardinality(slots) - :limit + 1] + make_interval(secs => :window + :margin)
                         END,
                    slots[cardinality(slots)] + make_interval(secs => CAST(:window AS float8) / :limit)) AS at,
           now, slots
    FROM b
)
UPDATE rate_limit_buckets r
SET slots = (slot.slots || slot.at)[greatest(1, cardinality(slot.slots) + 2 - :limit):]
FROM slot WHERE r.bucket = :bucket
RETURNING slot.at, extract(epoch FROM slot.at - slot.now) AS wait_seconds,
          (SELECT count(*) FROM unnest(r.slots) AS s WHERE s > slot.at - make_interval(secs => :window)) AS used,
          least(slot.now, (SELECT min(s) FROM unnest(r.slots) AS s WHERE s > slot.at - make_interval(secs => :window)))
              AS window_start
""")


@dataclass(frozen=True)
class RateLimit:
    """`limit` requests per `window_seconds` in the bucket `bucket`, across every process."""

    bucket: str
    limit: int
    window_seconds: int
    margin_seconds: float = MARGIN_SECONDS

    def __post_init__(self):
        if self.limit < 1 or self.window_seconds < 1:
            raise ValueError(f"rate limit {self.bucket}: limit and window must be ≥ 1, got "
                             f"{self.limit}/{self.window_seconds} s")

    def take(self, postgres: PostgresResource) -> tuple[datetime, float]:
        """Take the next slot: (its start, seconds from now until then, ≥ 0). Does not wait."""
        params = {"bucket": self.bucket, "limit": self.limit, "window": self.window_seconds,
                  "margin": self.margin_seconds}
        with postgres.begin() as conn:
            conn.execute(_ENSURE_SQL, params)
            row = conn.execute(_TAKE_SQL, params).one()
            record_rate_limit(conn, self.bucket, int(row.used), self.limit, row.window_start, self.window_seconds)
        return row.at, max(0.0, float(row.wait_seconds))

    def acquire(self, postgres: PostgresResource, sleep: Callable[[float], None] = time.sleep) -> float:
        """Take a slot and sleep until it starts. Returns the seconds slept (0 when under the limit)."""
        _, wait = self.take(postgres)
        if wait:
            sleep(wait)
        return wait
