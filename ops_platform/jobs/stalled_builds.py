"""Seed 002 `checkStalledBuilds`: fail builds running for 30+ minutes, log the activity, notify once each."""

import dagster as dg
from sqlalchemy import text

from ops_platform.framework.controls import WRITE_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.notifications import Notification, NotifierResource, Severity
from ops_platform.resources.postgres import PostgresResource

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


class StalledBuildsConfig(dg.Config):
    build_ids: list[int]


@dg.op(tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY)
def fail_stalled_builds(
    context: dg.OpExecutionContext, config: StalledBuildsConfig, postgres: PostgresResource, notifier: NotifierResource
) -> dg.Output:
    guard_run(context, postgres)
    params = {"ids": config.build_ids, "error": STALLED_ERROR, "minutes": STALL_MINUTES}
    with postgres.begin() as conn:
        marked = len(conn.execute(MARK_FAILED_SQL, params).all())
        builds = conn.execute(TO_NOTIFY_SQL, params).all()
    statuses = [
        notifier.send(
            Notification(
                type="build_stalled",
                severity=Severity.WARN,
                title=f"Build stalled: {b.prd_name}",
                body=f"Build {b.id} ({b.prd_name}) started {b.started_at:%Y-%m-%d %H:%M} UTC was marked failed: "
                f"{STALLED_ERROR}.",
                dedup_key=f"build_stalled:{b.id}",
                meta={"build_id": b.id},
            )
        )
        for b in builds
    ]
    context.log.info(f"stalled builds: {marked} marked failed, {len(builds)} notified")
    return dg.Output(None, metadata={"stalled": marked, "notified": statuses.count("sent") + statuses.count("digest"),
                                     "requested": len(config.build_ids)})


@dg.job(tags={"ops/kind": "notification"}, description="Fails stalled builds (seed 002) and notifies once per build.")
def stalled_builds_job():
    fail_stalled_builds()
