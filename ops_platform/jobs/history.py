"""Dagster's own history bounded (issue 13): a daily pass archives old runs and their event logs to ClickHouse,
then removes them from Dagster's storage, keeping every run the asset catalog still shows (ops_platform/history/)."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from pydantic import Field

from ops_platform.framework.controls import WRITE_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.history.archive import bound_history
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WAREHOUSE_POOL, WarehouseResource
from ops_platform.settings import current

RUN_RETENTION_DAYS_VAR, RUN_RETENTION_DAYS = "OPS_DAGSTER_RUN_RETENTION_DAYS", 30  # a field of Settings


class HistoryConfig(dg.Config):
    max_age_days: int | None = Field(
        default=None, ge=1, description=f"Runs last updated longer ago than this move to the archive; "
                                        f"unset: {RUN_RETENTION_DAYS_VAR} (default {RUN_RETENTION_DAYS}).")


@dg.op(tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY, pool=WAREHOUSE_POOL)
def archive_dagster_history(context: dg.OpExecutionContext, config: HistoryConfig, postgres: PostgresResource,
                            warehouse: WarehouseResource) -> dg.Output:
    guard_run(context, postgres)
    days = config.max_age_days or current().dagster_run_retention_days
    cutoff = datetime.now(UTC) - timedelta(days=days)
    with warehouse.client() as ch:
        result = bound_history(context.instance, ch, cutoff)
    context.log.info(f"{len(result.removed)} runs archived and removed, {len(result.kept)} kept for the catalog")
    return dg.Output(None, metadata=result.metadata() | {"cutoff": cutoff.isoformat()})


@dg.job(description="Dagster's own history: finished runs older than OPS_DAGSTER_RUN_RETENTION_DAYS (30) and their "
                    "event logs archived to ClickHouse (dagster_runs_archive, dagster_events_archive), verified, then "
                    "removed from Dagster's storage; runs holding the catalog's latest state stay.")
def dagster_history_job():
    archive_dagster_history()
