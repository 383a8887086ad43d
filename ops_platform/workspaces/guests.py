"""Guest organisation cleanup (seed 000 `/api/cron/cleanup-expired-orgs`): a guest organisation lives 7 days.

An organisation is expired when it is a guest and its `expires_at` (or, when that was never set, its
creation + GUEST_TTL) is at or before the cutoff (now). Deleting it deletes, by ON DELETE CASCADE and
the workspace trigger (migration 0032), its users, workspaces, connections, insights, metric points,
alert rules and digests. Non-guest organisations are never selected, whatever their expires_at.
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import Connection, text

GUEST_TTL = timedelta(days=7)  # seed 000: guest organisations are deleted 7 days after creation

_DELETE_EXPIRED_SQL = text(
    "DELETE FROM organisations WHERE is_guest"
    " AND coalesce(expires_at, created_at + make_interval(secs => :ttl)) <= :cutoff RETURNING id"
)


def delete_expired_guests(conn: Connection, now: datetime) -> dict:
    """Delete the expired guest organisations (see the module) in `conn`'s transaction.
    Returns {"deleted": count, "cutoff": ISO time, "organisation_ids": the ids, at most 100}."""
    ids = [r.id for r in conn.execute(_DELETE_EXPIRED_SQL, {"cutoff": now, "ttl": GUEST_TTL.total_seconds()})]
    return {"deleted": len(ids), "cutoff": now.isoformat(), "organisation_ids": sorted(ids)[:100]}
