"""Seed 004's campaign crons; the partitioned ones ask for the period that just ended."""

from datetime import timedelta

from ops_platform.assets.campaigns import DAILY_SCORES, HOURLY
from ops_platform.framework.schedules import gated_schedule, partition_before
from ops_platform.jobs.campaigns import (
    ai_budget_reset_job,
    auto_transition_job,
    cache_warmer_job,
    campaign_metrics_job,
    credit_usage_job,
    seat_usage_job,
    vis_job,
)

seat_usage_schedule = gated_schedule("seat_usage_schedule", seat_usage_job, "0 * * * *",
                                     env_var="SEAT_USAGE_CRON_INTERVAL", description="Seed 004 track-seat-usage, hourly.")
credit_usage_schedule = gated_schedule("credit_usage_schedule", credit_usage_job, "0 * * * *",
                                       env_var="CREDIT_USAGE_CRON_INTERVAL",
                                       description="Seed 004 track-credit-usage, hourly.")
campaign_metrics_schedule = gated_schedule(
    "campaign_metrics_schedule", campaign_metrics_job, "0 * * * *",
    request=partition_before(HOURLY, timedelta(hours=1)),
    description="Seed 004 aggregate-campaign-metrics, hourly: the hour that just ended.")
vis_schedule = gated_schedule("vis_schedule", vis_job, "0 2 * * *", env_var="VIS_CRON_SCHEDULE",
                              request=partition_before(DAILY_SCORES, timedelta(days=1)),
                              description="Seed 004 VIS recalculation, daily at 02:00: yesterday.")
auto_transition_schedule = gated_schedule("auto_transition_schedule", auto_transition_job, "0 * * * *",
                                          description="Seed 004 auto-transition-campaigns, hourly.")
ai_budget_reset_schedule = gated_schedule(
    "ai_budget_reset_schedule", ai_budget_reset_job, "0 0 * * *",
    description="Seed 004 AI budget reset, daily at 00:00 UTC (monthly budgets on the 1st).")
cache_warmer_schedule = gated_schedule(
    "cache_warmer_schedule", cache_warmer_job, "30 7 * * 1-5", timezone="America/Chicago", env_var="CACHE_WARMER_CRON",
    description="Seed 004 cache warmer, weekdays at 07:30 Central, before business hours.")
