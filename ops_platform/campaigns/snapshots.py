"""Seed 004 `campaign.status.changed` → Analytics "update snapshots": the hour a change fell in is
rematerialized in `warehouse/campaign_metrics_hourly`, that hourly partition alone.

A snapshot of hour H is the state at the end of H, so a change can be reflected once its hour has ended.
The sensor reads the changes whose hour has ended, in commit order ((txid, id) after its cursor, below
the oldest open transaction, as the events outbox sensor does), stopping at the first change of the
current hour. An hour whose latest snapshot was materialized after its last change (the hourly schedule
got there first) needs nothing; any other hour gets one run, keyed by the hour and its last change, so
each change is reflected exactly once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import text

from ops_platform.resources.postgres import PostgresResource

CHANGES_PER_TICK = 1000
_CHANGES_SQL = text("""
SELECT e.txid::text AS txid, e.id, e.created_at, e.created_at < date_trunc('hour', now()) AS hour_ended
FROM events_outbox e
WHERE e.name = 'campaign.status.changed' AND (e.txid, e.id) > (CAST(:txid AS xid8), :id)
  AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
ORDER BY e.txid, e.id
LIMIT :limit
""")


@dataclass(frozen=True)
class ChangedHour:
    hour: datetime  # start of the hour (UTC)
    last_event_id: int
    last_change_at: datetime


def changed_hours(postgres: PostgresResource, cursor: tuple[str, int]) -> tuple[list[ChangedHour], tuple[str, int] | None]:
    """The hours of the changes after `cursor` (txid, id) whose hour has ended, and the new cursor (None:
    nothing read). Raises DatabaseUnavailable when Postgres is down."""
    with postgres.begin() as conn:
        rows = conn.execute(_CHANGES_SQL, {"txid": cursor[0], "id": cursor[1], "limit": CHANGES_PER_TICK}).all()
    ended = []
    for row in rows:
        if not row.hour_ended:
            break  # its hour is still running: read again on a later tick
        ended.append(row)
    hours: dict[datetime, ChangedHour] = {}
    for row in ended:
        hour = row.created_at.replace(minute=0, second=0, microsecond=0)
        seen = hours.get(hour)
        hours[hour] = ChangedHour(hour, max(row.id, seen.last_event_id if seen else 0),
                                  max(row.created_at, seen.last_change_at if seen else row.created_at))
    return sorted(hours.values(), key=lambda h: h.hour), ((ended[-1].txid, ended[-1].id) if ended else None)
