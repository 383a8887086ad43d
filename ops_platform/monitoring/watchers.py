"""Seed 003 watchers: each one set-wise query with an explicit `now`, each turning its rows into incidents.

| watcher           | reads                      | fires when                                   | severity           |
|-------------------|----------------------------|----------------------------------------------|--------------------|
| repeated_failures | audit_log runs, api_calls  | 3+ failures of one action in the last 30 min | WARN               |
| rate_limit        | rate_limit_usage           | a bucket's current window ≥ 80% used         | INFO; WARN at 100% |
| api_volume        | api_calls                  | last hour ≥ 200% of the 7-day average hour   | INFO; WARN at 400% |
| db_latency        | db_latency_samples         | average answer time > 1000 ms over 30 min    | WARN               |

Every watcher runs in its own transaction with a statement timeout, so one that fails (or hangs)
is reported and the others go on.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import Row, TextClause, text

from ops_platform.monitoring.incidents import Incident
from ops_platform.notifications import Severity
from ops_platform.resources.postgres import PostgresResource

FAILURES_THRESHOLD, FAILURES_WINDOW_MINUTES = 3, 30
RATE_LIMIT_PERCENT, RATE_LIMIT_WARN_PERCENT = 80, 100
VOLUME_PERCENT, VOLUME_WARN_PERCENT, BASELINE_HOURS = 200, 400, 7 * 24
DB_LATENCY_MS, DB_LATENCY_WINDOW_MINUTES = 1000, 30
STATEMENT_TIMEOUT = "10s"


@dataclass(frozen=True)
class Watcher:
    name: str  # also the incident type
    query: TextClause  # takes :now (and nothing else); returns one row per breach
    incident: Callable[[Row], Incident]


@dataclass
class WatchReport:
    incidents: list[Incident] = field(default_factory=list)
    errors: dict[str, str] = field(default_factory=dict)  # watcher name → what went wrong
    checked: list[str] = field(default_factory=list)


REPEATED_FAILURES = Watcher(
    "repeated_failures",
    text(f"""
    WITH failures AS (
        SELECT action AS subject, ts, error FROM audit_log
        WHERE action_type = 'run' AND NOT success
          AND ts > :now - interval '{FAILURES_WINDOW_MINUTES} minutes' AND ts <= :now
        UNION ALL
        SELECT source || ' ' || endpoint, ts, coalesce(error, 'HTTP ' || status_code) FROM api_calls
        WHERE NOT ok AND ts > :now - interval '{FAILURES_WINDOW_MINUTES} minutes' AND ts <= :now
    )
    SELECT subject, count(*) AS failures, max(ts) AS last_at,
           (array_agg(error ORDER BY ts DESC))[1] AS last_error
    FROM failures GROUP BY subject HAVING count(*) >= {FAILURES_THRESHOLD} ORDER BY subject
    """),
    lambda r: Incident(
        "repeated_failures", r.subject, Severity.WARN, f"Repeated failures: {r.subject}",
        f"{r.subject} failed {r.failures} times in the last {FAILURES_WINDOW_MINUTES} minutes "
        f"(threshold {FAILURES_THRESHOLD}); last at {r.last_at:%H:%M} UTC: {(r.last_error or 'no error text')[:500]}"),
)

RATE_LIMIT = Watcher(
    "rate_limit",
    # Only windows current at :now count: a bucket last filled yesterday is not at risk today.
    text(f"""
    SELECT bucket AS subject, used, limit_value, round(100.0 * used / limit_value, 1) AS percent
    FROM rate_limit_usage
    WHERE used * 100 >= limit_value * {RATE_LIMIT_PERCENT}
      AND window_start <= :now AND window_start + make_interval(secs => window_seconds) > :now
    ORDER BY bucket
    """),
    lambda r: Incident(
        "rate_limit", r.subject, Severity.WARN if r.percent >= RATE_LIMIT_WARN_PERCENT else Severity.INFO,
        f"Rate limit {r.percent}% used: {r.subject}",
        f"Bucket {r.subject} used {r.used} of {r.limit_value} calls in its current window "
        f"({r.percent}%, alert at {RATE_LIMIT_PERCENT}%)."),
)

API_VOLUME = Watcher(
    "api_volume",
    # Per API: calls in the last hour against the average hour of the 7 days before it. An API
    # with no calls in the baseline has nothing to compare with and is not reported.
    text(f"""
    SELECT source AS subject,
           count(*) FILTER (WHERE ts > :now - interval '1 hour') AS last_hour,
           round(count(*) FILTER (WHERE ts <= :now - interval '1 hour') / {BASELINE_HOURS}.0, 2) AS baseline,
           round(100.0 * {BASELINE_HOURS} * count(*) FILTER (WHERE ts > :now - interval '1 hour')
                 / nullif(count(*) FILTER (WHERE ts <= :now - interval '1 hour'), 0)) AS percent
    FROM api_calls
    WHERE ts > :now - interval '{BASELINE_HOURS + 1} hours' AND ts <= :now
    GROUP BY source
    HAVING count(*) FILTER (WHERE ts <= :now - interval '1 hour') > 0
       AND count(*) FILTER (WHERE ts > :now - interval '1 hour') * {BASELINE_HOURS} * 100
           >= count(*) FILTER (WHERE ts <= :now - interval '1 hour') * {VOLUME_PERCENT}
    ORDER BY source
    """),
    lambda r: Incident(
        "api_volume", r.subject, Severity.WARN if r.percent >= VOLUME_WARN_PERCENT else Severity.INFO,
        f"API call volume {r.percent:.0f}% of baseline: {r.subject}",
        f"{r.subject}: {r.last_hour} calls in the last hour, against {r.baseline} in an average hour of the "
        f"previous 7 days ({r.percent:.0f}%, alert at {VOLUME_PERCENT}%)."),
)

DB_LATENCY = Watcher(
    "db_latency",
    text(f"""
    SELECT 'database' AS subject, round(avg(latency_ms)::numeric, 1) AS avg_ms, count(*) AS samples
    FROM db_latency_samples
    WHERE ts > :now - interval '{DB_LATENCY_WINDOW_MINUTES} minutes' AND ts <= :now
    HAVING avg(latency_ms) > {DB_LATENCY_MS}
    """),
    lambda r: Incident(
        "db_latency", r.subject, Severity.WARN, f"Database slow: {r.avg_ms} ms on average",
        f"The database answered in {r.avg_ms} ms on average over the last {DB_LATENCY_WINDOW_MINUTES} minutes "
        f"({r.samples} samples from the health monitor; alert above {DB_LATENCY_MS} ms)."),
)

WATCHERS: tuple[Watcher, ...] = (REPEATED_FAILURES, RATE_LIMIT, API_VOLUME, DB_LATENCY)


def run_watchers(postgres: PostgresResource, now: datetime, watchers: Sequence[Watcher] = WATCHERS) -> WatchReport:
    """Every watcher, each on its own: a failing one is reported in `errors` and the others go on."""
    report = WatchReport()
    for watcher in watchers:
        try:
            with postgres.begin() as conn:
                conn.execute(text(f"SET LOCAL statement_timeout = '{STATEMENT_TIMEOUT}'"))
                rows = conn.execute(watcher.query, {"now": now}).all()
            report.incidents.extend(watcher.incident(row) for row in rows)
            report.checked.append(watcher.name)
        except Exception as err:  # noqa: BLE001 - one broken watcher must not stop the others
            report.errors[watcher.name] = f"{type(err).__name__}: {str(err).strip().splitlines()[0][:300]}"
    return report
