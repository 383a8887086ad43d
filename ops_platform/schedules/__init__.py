"""Every schedule, from one factory: cron from the seeds (overridable by env), gated by controls."""

from __future__ import annotations

from collections.abc import Callable

import dagster as dg

from ops_platform.assets.agent_builds import build_stats, inactive_users
from ops_platform.assets.agent_stats import agent_stats_cache
from ops_platform.assets.operational import table_size_checks
from ops_platform.assets.warehouse import DAILY, WAREHOUSE_ASSETS
from ops_platform.framework.controls import ALWAYS_RUNS, WRITE_JOB
from ops_platform.framework.guard import tick_gate
from ops_platform.jobs.maintenance import (
    activity_cleanup_job,
    archive_cleanup_job,
    execution_compaction_job,
    log_retention_job,
)
from ops_platform.resources.postgres import PostgresResource
from ops_platform.settings import cron_from_env

RequestFn = Callable[[dg.ScheduleEvaluationContext], dg.RunRequest]


def gated_schedule(
    name: str,
    job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
    cron: str,
    *,
    env_var: str | None = None,
    timezone: str = "UTC",
    gates: tuple[str, ...] = WRITE_JOB,
    request: RequestFn = lambda context: dg.RunRequest(),
    description: str = "",
) -> dg.ScheduleDefinition:
    cron = cron_from_env(env_var, cron)
    override = f" Override with {env_var}." if env_var else ""

    @dg.schedule(name=name, job=job, cron_schedule=cron, execution_timezone=timezone,
                 default_status=dg.DefaultScheduleStatus.RUNNING, description=f"{description}{override}".strip())
    def _schedule(context: dg.ScheduleEvaluationContext, postgres: PostgresResource):
        return tick_gate(postgres, name, gates, at=context.scheduled_execution_time) or request(context)

    return _schedule


agent_stats_job = dg.define_asset_job("agent_stats_job", selection=[agent_stats_cache],
                                      description="Refreshes the agent stats cache (seed 002).")
build_stats_job = dg.define_asset_job("build_stats_job", selection=[build_stats],
                                      description="Hourly build statistics (seed 002).")
inactive_users_job = dg.define_asset_job("inactive_users_job", selection=[inactive_users],
                                         description="Marks users inactive for 90+ days (seed 002).")
health_check_job = dg.define_asset_job("health_check_job", selection=dg.AssetSelection.checks(table_size_checks),
                                       description="Seed 002 healthCheck: table sizes and reachability.")
warehouse_sync_job = dg.define_asset_job("warehouse_sync_job",
                                         selection=dg.AssetSelection.assets(*WAREHOUSE_ASSETS).without_checks(),
                                         description="Postgres → ClickHouse sync of every synced table.")

INCREMENTAL = {"ops": {a.op.name: {"config": {"mode": "incremental"}} for a in WAREHOUSE_ASSETS}}


def _incremental_sync(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
    today = DAILY.get_last_partition_key(current_time=context.scheduled_execution_time)
    return dg.RunRequest(partition_key=today, run_config=INCREMENTAL, tags={"ops/sync_mode": "incremental"})


SCHEDULES = [
    gated_schedule("agent_stats_schedule", agent_stats_job, "*/5 * * * *",
                   description="Seed 002 computeAgentStats, every 5 minutes."),
    gated_schedule("warehouse_sync_schedule", warehouse_sync_job, "*/15 * * * *", env_var="ANALYTICS_SYNC_INTERVAL",
                   request=_incremental_sync,
                   description="Seed 004 analytics sync, every 15 minutes: rows changed since the watermark."),
    gated_schedule("build_stats_schedule", build_stats_job, "0 * * * *", description="Seed 002 refreshBuildStats, hourly."),
    gated_schedule("inactive_users_schedule", inactive_users_job, "0 1 * * *",
                   description="Seed 002 markInactiveUsers, daily at 01:00 UTC."),
    gated_schedule("health_check_schedule", health_check_job, "*/30 * * * *", gates=ALWAYS_RUNS,
                   description="Seed 002 healthCheck, every 30 minutes; runs even when jobs are disabled."),
    gated_schedule("activity_cleanup_schedule", activity_cleanup_job, "0 * * * *",
                   description="Seed 002 cleanupOldActivity, hourly."),
    gated_schedule("execution_compaction_schedule", execution_compaction_job, "0 0 * * *",
                   description="Seed 002 compactOldExecutions, daily at midnight UTC."),
    gated_schedule("log_retention_schedule", log_retention_job, "0 3 * * *",
                   description="Seed 001 log cleanup, daily at 03:00 UTC."),
    gated_schedule("archive_cleanup_schedule", archive_cleanup_job, "0 2 * * *", timezone="America/Chicago",
                   description="Seed 003 cleanup_old_data (archive, never delete), daily at 02:00 Central."),
]
JOBS = [agent_stats_job, build_stats_job, inactive_users_job, health_check_job, warehouse_sync_job,
        activity_cleanup_job, log_retention_job, archive_cleanup_job, execution_compaction_job]
