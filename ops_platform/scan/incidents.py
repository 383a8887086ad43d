"""Resolving incidents whose condition has cleared (seed 003 updateIncidentStatus).

An open incident is resolved when the check that opened it, asked again now, no longer finds its
subject. Only types with such a check are touched; any other incident (job_failing, synthetic checks, ...)
stays open for a person to close.

| type                                    | still holds when                                                |
|-----------------------------------------|-----------------------------------------------------------------|
| repeated_failures, rate_limit,          | its watcher (monitoring/watchers.py) still reports the subject; |
| api_volume, db_latency                  | a watcher that failed this time resolves nothing                |
| repeated_failures for `n8n workflow X`  | X failed 3+ times in the last 30 minutes (n8n_executions)       |
| source_auth, source_unreachable         | the source's last sync did not succeed (data_source_sync)       |
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import text

from ops_platform.monitoring.watchers import FAILURES_THRESHOLD, FAILURES_WINDOW_MINUTES, run_watchers
from ops_platform.resources.postgres import PostgresResource

STILL_FAILING_SQL = text(f"""
SELECT 'repeated_failures:n8n workflow ' || workflow_id FROM n8n_executions
WHERE status = 'error' AND started_at > :now - interval '{FAILURES_WINDOW_MINUTES} minutes' AND started_at <= :now
GROUP BY workflow_id HAVING count(*) >= {FAILURES_THRESHOLD}
UNION ALL
SELECT t.type || ':' || source_name FROM data_source_sync, (VALUES ('source_auth'), ('source_unreachable')) AS t(type)
WHERE last_sync_success IS NOT TRUE
""")
# dedup_key is type:subject:YYYY-MM-DDTHH (monitoring/incidents.py): its condition is all but the hour.
RESOLVE_SQL = text("""
UPDATE incidents SET status = 'resolved', resolved_at = :now
WHERE status = 'open' AND created_at <= :now AND type = ANY(:types)
  AND regexp_replace(dedup_key, ':[^:]*$', '') <> ALL(:holding)
RETURNING id, type, dedup_key
""")
SOURCE_TYPES = ["source_auth", "source_unreachable"]


def resolve_cleared(postgres: PostgresResource, now: datetime) -> list[str]:
    """Resolve the open incidents whose condition no longer holds at `now`; returns their dedup keys."""
    report = run_watchers(postgres, now)
    holding = [f"{i.type}:{i.subject}" for i in report.incidents]
    with postgres.begin() as conn:
        holding += list(conn.execute(STILL_FAILING_SQL, {"now": now}).scalars())
        rows = conn.execute(RESOLVE_SQL, {"now": now, "types": report.checked + SOURCE_TYPES,
                                          "holding": holding}).all()
    return [r.dedup_key for r in rows]
