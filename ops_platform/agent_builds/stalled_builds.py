"""Seed 002 `checkStalledBuilds`: builds running for 30+ minutes are failed, logged and notified once each."""

from sqlalchemy import text
from sqlalchemy.engine import Connection

from ops_platform.notifications import Notification, Severity

STALL_MINUTES = 30
STALLED_ERROR = "Build stalled (no activity for 30+ minutes)"

FIND_STALLED_SQL = text(
    "SELECT id FROM builds WHERE status = 'running' AND started_at < now() - make_interval(mins => :minutes)"
    " ORDER BY id"
)
# Idempotent: a build already failed (by an earlier attempt of this run, or by hand) is left alone.
MARK_FAILED_SQL = text("""
WITH failed AS (
    UPDATE builds SET status = 'failed', completed_at = now(), error = :error,
                      duration_ms = (extract(epoch FROM now() - started_at) * 1000)::bigint
    WHERE id = ANY(:ids) AND status = 'running' AND started_at < now() - make_interval(mins => :minutes)
    RETURNING id, prd_name
)
INSERT INTO agent_activity_feed (event_type, details)
SELECT 'task_failed', 'Build stalled: ' || prd_name FROM failed
RETURNING 1
""")
# Notify every build of the batch that is failed as stalled, including ones an earlier attempt
# marked but did not get to notify; the dedup key keeps it to one message per build.
TO_NOTIFY_SQL = text("SELECT id, prd_name, started_at FROM builds WHERE id = ANY(:ids) AND error = :error ORDER BY id")


def stalled_build_ids(conn: Connection) -> list[int]:
    """Ids of builds running for STALL_MINUTES or more, ascending."""
    return [row.id for row in conn.execute(FIND_STALLED_SQL, {"minutes": STALL_MINUTES})]


def fail_stalled(conn: Connection, build_ids: list[int]) -> tuple[int, list[Notification]]:
    """Fail those of `build_ids` still stalled; returns how many this call marked, and one message per
    build of the batch that is failed as stalled (dedup key `build_stalled:<id>`: one message per build)."""
    params = {"ids": build_ids, "error": STALLED_ERROR, "minutes": STALL_MINUTES}
    marked = len(conn.execute(MARK_FAILED_SQL, params).all())
    return marked, [
        Notification(
            type="build_stalled",
            severity=Severity.WARN,
            title=f"Build stalled: {b.prd_name}",
            body=f"Build {b.id} ({b.prd_name}) started {b.started_at:%Y-%m-%d %H:%M} UTC was marked failed: "
            f"{STALLED_ERROR}.",
            dedup_key=f"build_stalled:{b.id}",
            meta={"build_id": b.id},
        )
        for b in conn.execute(TO_NOTIFY_SQL, params)
    ]
