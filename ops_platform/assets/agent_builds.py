"""Seed 002's caches as assets: agent stats (every 5 minutes), hourly build stats, daily inactive users.

Each is one SQL statement instead of the seed's loops over agents × tasks.
"""

import dagster as dg
from sqlalchemy import text

from ops_platform.framework.asset_pages import DAILY, EVERY_5_MINUTES, HOURLY, asset_page, columns, row_count
from ops_platform.framework.controls import WRITE_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.resources.postgres import PostgresResource

# Aggregate tasks and executions once each (hash aggregates), join to agents, upsert the cache.
REFRESH_SQL = text("""
WITH task_counts AS (
    SELECT agent_name,
           count(*)                                  AS total,
           count(*) FILTER (WHERE status = 'done')    AS done,
           count(*) FILTER (WHERE status = 'failed')  AS failed,
           bool_or(status = 'running')               AS any_running
    FROM tasks GROUP BY agent_name
), execution_stats AS (
    SELECT agent_name, avg(duration_ms) AS avg_duration_ms, max(ts) AS last_active
    FROM executions GROUP BY agent_name
), upserted AS (
    INSERT INTO agent_stats_cache AS c (agent_id, agent_name, total_tasks, completed_tasks, failed_tasks,
                                        success_rate, avg_duration_ms, last_active, current_status, cached_at)
    SELECT a.id, a.name,
           coalesce(t.total, 0), coalesce(t.done, 0), coalesce(t.failed, 0),
           CASE WHEN coalesce(t.total, 0) = 0 THEN 0 ELSE round(100.0 * t.done / t.total, 2) END,
           round(e.avg_duration_ms, 2), e.last_active,
           CASE WHEN coalesce(t.any_running, false) THEN 'active' ELSE 'idle' END,
           now()
    FROM agents a
    LEFT JOIN task_counts t ON t.agent_name = a.name
    LEFT JOIN execution_stats e ON e.agent_name = a.name
    ON CONFLICT (agent_id) DO UPDATE SET
        agent_name = EXCLUDED.agent_name, total_tasks = EXCLUDED.total_tasks,
        completed_tasks = EXCLUDED.completed_tasks, failed_tasks = EXCLUDED.failed_tasks,
        success_rate = EXCLUDED.success_rate, avg_duration_ms = EXCLUDED.avg_duration_ms,
        last_active = EXCLUDED.last_active, current_status = EXCLUDED.current_status,
        cached_at = EXCLUDED.cached_at
    RETURNING current_status
)
SELECT count(*) AS computed, count(*) FILTER (WHERE current_status = 'active') AS active, now() AS ts FROM upserted
""")
AGENT_STATS_COLUMNS = columns(
    ("agent_id", "bigint"), ("agent_name", "text"), ("total_tasks", "bigint"), ("completed_tasks", "bigint"),
    ("failed_tasks", "bigint"), ("success_rate", "numeric(5,2)"), ("avg_duration_ms", "numeric(14,2)"),
    ("last_active", "timestamp with time zone"), ("current_status", "text"), ("cached_at", "timestamp with time zone"))


@dg.asset(
    **asset_page("agent_builds", "agent_stats_cache", AGENT_STATS_COLUMNS, EVERY_5_MINUTES),
    kinds={"postgres"},
    deps=[["postgres", "agents"], ["postgres", "tasks"], ["postgres", "executions"]],
    op_tags=gate_tags(WRITE_JOB),
    retry_policy=DEFAULT_RETRY_POLICY,
    description=(
        "Per-agent statistics for the dashboard (seed 002), at most 5 minutes stale. For each agent: "
        "total/completed/failed tasks, success_rate = completed / total × 100 (0 with no tasks), "
        "avg_duration_ms and last_active over its executions (NULL if none), current_status = "
        "'active' if any task is running else 'idle', and cached_at."
    ),
)
def agent_stats_cache(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    guard_run(context, postgres)
    with postgres.begin() as conn:
        row = conn.execute(REFRESH_SQL).one()
    return dg.MaterializeResult(metadata=row_count(row.computed) | {  # the cache's rows: every agent is upserted
        "computed": row.computed, "active_agents": row.active, "timestamp": row.ts.isoformat()})


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
