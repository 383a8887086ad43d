"""Seed 004 FinOps: the daily cost aggregation asset (ClickHouse `cost_daily`)."""

import dagster as dg

from ops_platform.assets.campaigns import COMMON, _replace_window
from ops_platform.finops.costs import COST_COLUMNS, COST_SCHEMA, COST_SQL
from ops_platform.framework import asset_pages
from ops_platform.framework.asset_pages import asset_page
from ops_platform.framework.guard import guard_run
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WAREHOUSE_POOL, WarehouseResource

COST_DAYS = dg.DailyPartitionsDefinition(start_date="2025-01-01")


@dg.asset(key=["warehouse", "cost_daily"], **asset_page("finops", "cost_daily", COST_SCHEMA, asset_pages.DAILY),
          kinds={"clickhouse", "postgres"}, partitions_def=COST_DAYS, backfill_policy=dg.BackfillPolicy.single_run(),
          pool=WAREHOUSE_POOL, deps=[["postgres", "campaigns"]], **COMMON, description=(
              "FinOps cost per tenant and day (seed 004 cost aggregation): AI spend, calls and tokens from ai_usage, "
              "infrastructure spend from infra_costs, their total, and the tenant's daily AI budget that day. "
              "Computed set-wise in Postgres (finops/costs.py); a run replaces exactly its days in ClickHouse."))
def cost_daily(context: dg.AssetExecutionContext, postgres: PostgresResource,
               warehouse: WarehouseResource) -> dg.MaterializeResult:
    guard_run(context, postgres)
    rows = _replace_window(context, warehouse, postgres, "cost_daily", "cost_date", COST_COLUMNS, COST_SQL, {})
    return dg.MaterializeResult(metadata={"rows": rows, "days": len(context.partition_keys)})
