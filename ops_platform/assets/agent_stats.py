"""Seed 002 `computeAgentStats`: one SQL statement instead of a loop over agents × tasks."""

import dagster as dg
from sqlalchemy import text

from ops_platform.framework.asset_pages import EVERY_5_MINUTES, asset_page, columns, row_count
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
