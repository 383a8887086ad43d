"""Seed 002 hourly build statistics and daily inactive-user marking."""

import dagster as dg
from sqlalchemy import text

from ops_platform.framework.asset_pages import DAILY, HOURLY, asset_page, columns, row_count
from ops_platform.framework.controls import WRITE_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.resources.postgres import PostgresResource

INACTIVE_DAYS = 90

BUILD_STATS_SQL = text("""
INSERT INTO build_stats_cache AS c (snapshot_hour, total_builds, completed_builds, failed_builds, running_builds,
                                    success_rate, avg_duration_ms, computed_at)
SELECT date_trunc('hour', now()), count(*),
       count(*) FILTER (WHERE status = 'completed'), count(*) FILTER (WHERE status = 'failed'),
       count(*) FILTER (WHERE status = 'running'),
       CASE WHEN count(*) = 0 THEN 0 ELSE round(100.0 * count(*) FILTER (WHERE status = 'completed') / count(*), 2) END,
       round(avg(duration_ms) FILTER (WHERE status = 'completed'), 2), now()
FROM builds
ON CONFLICT (snapshot_hour) DO UPDATE SET
    total_builds = EXCLUDED.total_builds, completed_builds = EXCLUDED.completed_builds,
    failed_builds = EXCLUDED.failed_builds, running_builds = EXCLUDED.running_builds,
    success_rate = EXCLUDED.success_rate, avg_duration_ms = EXCLUDED.avg_duration_ms, computed_at = EXCLUDED.computed_at
RETURNING *
""")
BUILD_STATS_COLUMNS = columns(
    ("snapshot_hour", "timestamp with time zone"), ("total_builds", "bigint"), ("completed_builds", "bigint"),
    ("failed_builds", "bigint"), ("running_builds", "bigint"), ("success_rate", "numeric(5,2)"),
    ("avg_duration_ms", "numeric(14,2)"), ("computed_at", "timestamp with time zone"))

INACTIVE_SQL = text("""
WITH cutoff AS (SELECT now() - make_interval(days => :days) AS at),
marked AS (
    UPDATE user_profiles SET inactive_since = now()
    WHERE last_active_at < (SELECT at FROM cutoff) AND inactive_since IS NULL RETURNING 1
), revived AS (
    UPDATE user_profiles SET inactive_since = NULL
    WHERE inactive_since IS NOT NULL AND last_active_at >= (SELECT at FROM cutoff) RETURNING 1
)
SELECT (SELECT count(*) FROM user_profiles WHERE last_active_at < (SELECT at FROM cutoff)) AS inactive,
       (SELECT count(*) FROM marked) AS newly_inactive, (SELECT count(*) FROM revived) AS reactivated,
       (SELECT at FROM cutoff) AS cutoff
""")
INACTIVE_COLUMNS = columns(("id", "bigint"), ("email", "text"), ("last_active_at", "timestamp with time zone"),
                           ("inactive_since", "timestamp with time zone"))


@dg.asset(
    **asset_page("agent_builds", "build_stats_cache", BUILD_STATS_COLUMNS, HOURLY),
    kinds={"postgres"}, deps=[["postgres", "builds"]],
    op_tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY,
    description=("Hourly build statistics (seed 002 refreshBuildStats), one row per hour in build_stats_cache: "
                 "total, completed, failed and running builds; success_rate = completed / total × 100 "
                 "(0 with no builds); avg_duration_ms over completed builds."),
)
def build_stats(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    guard_run(context, postgres)
    with postgres.begin() as conn:
        row = conn.execute(BUILD_STATS_SQL).one()
        hours = conn.execute(text("SELECT count(*) FROM build_stats_cache")).scalar_one()  # one row an hour: cheap
    return dg.MaterializeResult(metadata=row_count(hours) | {
        "totalBuilds": row.total_builds, "completedBuilds": row.completed_builds, "failedBuilds": row.failed_builds,
        "runningBuilds": row.running_builds, "successRate": float(row.success_rate),
        "avgDurationMs": float(row.avg_duration_ms) if row.avg_duration_ms is not None else None,
        "timestamp": row.computed_at.isoformat()})


@dg.asset(
    **asset_page("agent_builds", "user_profiles", INACTIVE_COLUMNS, DAILY),
    kinds={"postgres"}, deps=[["postgres", "user_profiles"]],
    op_tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY,
    description=(f"Users inactive for {INACTIVE_DAYS}+ days (seed 002 markInactiveUsers): user_profiles.inactive_since "
                 "is set when a user crosses the line and cleared when they come back. Users never seen are not counted."),
)
def inactive_users(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    guard_run(context, postgres)
    with postgres.begin() as conn:
        row = conn.execute(INACTIVE_SQL, {"days": INACTIVE_DAYS}).one()
    return dg.MaterializeResult(metadata=row_count(row.inactive) | {  # the asset's rows: the inactive users
        "inactive": row.inactive, "newly_inactive": row.newly_inactive, "reactivated": row.reactivated,
        "cutoffTime": row.cutoff.isoformat()})
