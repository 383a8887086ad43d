"""Every schedule, from one factory: cron from the seeds (overridable by env), gated by controls."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import dagster as dg

from ops_platform.assets.agent_builds import build_stats, inactive_users
from ops_platform.assets.agent_stats import agent_stats_cache
from ops_platform.assets.campaigns import DAILY_SCORES, HOURLY, campaign_metrics_hourly, credit_usage, seat_usage, vis_scores
from ops_platform.assets.operational import table_size_checks
from ops_platform.assets.warehouse import DAILY, WAREHOUSE_ASSETS, WAREHOUSE_CHECKS
from ops_platform.framework.controls import ALWAYS_RUNS, WRITE_JOB
from ops_platform.framework.guard import tick_gate
from ops_platform.jobs.campaigns import ai_budget_reset_job, auto_transition_job, set_campaign_status_job
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
                                         selection=dg.AssetSelection.assets(*WAREHOUSE_ASSETS)
                                         - dg.AssetSelection.checks(*WAREHOUSE_CHECKS),  # parity: on demand
                                         description="Postgres → ClickHouse sync of every synced table.")

seat_usage_job = dg.define_asset_job("seat_usage_job", selection=[seat_usage], description="Seed 004 seat usage.")
credit_usage_job = dg.define_asset_job("credit_usage_job", selection=[credit_usage], description="Seed 004 credit usage.")
campaign_metrics_job = dg.define_asset_job("campaign_metrics_job", selection=[campaign_metrics_hourly],
                                           description="Seed 004 hourly campaign metric snapshots (ClickHouse).")
vis_job = dg.define_asset_job("vis_job", selection=[vis_scores], description="Seed 004 VIS score recalculation.")
cache_warmer_job = dg.define_asset_job("cache_warmer_job", selection=[agent_stats_cache, build_stats, seat_usage, credit_usage],
                                       description="Seed 004 cache warmer: the dashboard caches, fresh before business hours.")


def _partition_before(partitions, lag: timedelta = timedelta(0), **request_args) -> RequestFn:
    """A request for the partition holding (scheduled time − lag): today with no lag, the hour that just
    ended with one hour, yesterday with one day."""
    def request(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        at = context.scheduled_execution_time - lag
        return dg.RunRequest(partition_key=partitions.get_partition_key_for_timestamp(at.timestamp()), **request_args)
    return request


INCREMENTAL = {"ops": {a.op.name: {"config": {"mode": "incremental"}} for a in WAREHOUSE_ASSETS}}


SCHEDULES = [
    gated_schedule("agent_stats_schedule", agent_stats_job, "*/5 * * * *",
                   description="Seed 002 computeAgentStats, every 5 minutes."),
    gated_schedule("warehouse_sync_schedule", warehouse_sync_job, "*/15 * * * *", env_var="ANALYTICS_SYNC_INTERVAL",
                   request=_partition_before(DAILY, run_config=INCREMENTAL, tags={"ops/sync_mode": "incremental"}),
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
    gated_schedule("seat_usage_schedule", seat_usage_job, "0 * * * *", env_var="SEAT_USAGE_CRON_INTERVAL",
                   description="Seed 004 track-seat-usage, hourly."),
    gated_schedule("credit_usage_schedule", credit_usage_job, "0 * * * *", env_var="CREDIT_USAGE_CRON_INTERVAL",
                   description="Seed 004 track-credit-usage, hourly."),
    gated_schedule("campaign_metrics_schedule", campaign_metrics_job, "0 * * * *", request=_partition_before(HOURLY, timedelta(hours=1)),
                   description="Seed 004 aggregate-campaign-metrics, hourly: the hour that just ended."),
    gated_schedule("vis_schedule", vis_job, "0 2 * * *", env_var="VIS_CRON_SCHEDULE",
                   request=_partition_before(DAILY_SCORES, timedelta(days=1)), description="Seed 004 VIS recalculation, daily at 02:00: yesterday."),
    gated_schedule("auto_transition_schedule", auto_transition_job, "0 * * * *",
                   description="Seed 004 auto-transition-campaigns, hourly."),
    gated_schedule("ai_budget_reset_schedule", ai_budget_reset_job, "0 0 * * *",
                   description="Seed 004 AI budget reset, daily at 00:00 UTC (monthly budgets on the 1st)."),
    gated_schedule("cache_warmer_schedule", cache_warmer_job, "30 7 * * 1-5", timezone="America/Chicago",
                   description="Seed 004 cache warmer, weekdays at 07:30 Central, before business hours."),
]
JOBS = [agent_stats_job, build_stats_job, inactive_users_job, health_check_job, warehouse_sync_job,
        activity_cleanup_job, log_retention_job, archive_cleanup_job, execution_compaction_job,
        seat_usage_job, credit_usage_job, campaign_metrics_job, vis_job, cache_warmer_job,
        auto_transition_job, ai_budget_reset_job, set_campaign_status_job]
