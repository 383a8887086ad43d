"""Seed 000 daily insights: one partition per day, every workspace with an active connection."""

import dagster as dg

from ops_platform.framework import asset_pages
from ops_platform.framework.asset_pages import asset_page, columns, row_count
from ops_platform.framework.controls import WRITE_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WAREHOUSE_POOL, WarehouseResource
from ops_platform.workspaces.insights import TrailingBaseline, generate

INSIGHT_DAYS = dg.DailyPartitionsDefinition(start_date="2025-01-01")
INSIGHTS_SCHEMA = columns(
    ("workspace_id", "bigint"), ("day", "date"), ("rank", "integer"), ("kind", "text"), ("metric", "text"),
    ("title", "text"), ("score", "double precision"), ("details", "jsonb"), ("generator", "text"),
    ("created_at", "timestamp with time zone"))


@dg.asset(key=["postgres", "insights"], **asset_page("workspaces", "insights", INSIGHTS_SCHEMA, asset_pages.DAILY),
          kinds={"postgres", "clickhouse"}, partitions_def=INSIGHT_DAYS, pool=WAREHOUSE_POOL,
          op_tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY, description=(
              "Seed 000 daily insights: for each workspace with an active connection, the day's movers and anomalies "
              "against a trailing 28-day baseline (computed in ClickHouse), as many as the owner's AI proactivity "
              "allows (off 0, low 1, balanced 2–3, high up to 5), best first. A run replaces its day's insights."))
def insights(context: dg.AssetExecutionContext, postgres: PostgresResource,
             warehouse: WarehouseResource) -> dg.MaterializeResult:
    guard_run(context, postgres)
    day = context.partition_time_window.start.date()
    counts = generate(postgres, TrailingBaseline(postgres, warehouse), day)
    return dg.MaterializeResult(metadata=row_count(counts["insights"]) | {
        "workspaces": counts["workspaces"], "by_proactivity": dg.MetadataValue.json(counts["by_proactivity"])})
