"""Seed 000 crons: guest organisation cleanup, daily insights (yesterday's)."""

from datetime import timedelta

from ops_platform.assets.workspaces import INSIGHT_DAYS
from ops_platform.framework.schedules import gated_schedule, partition_before
from ops_platform.jobs.workspaces import guest_cleanup_job, insights_job

guest_cleanup_schedule = gated_schedule(
    "guest_cleanup_schedule", guest_cleanup_job, "0 4 * * *", env_var="GUEST_CLEANUP_CRON",
    description="Seed 000 cleanup-expired-orgs, daily at 04:00 UTC.")
insights_schedule = gated_schedule(
    "insights_schedule", insights_job, "0 5 * * *", env_var="INSIGHTS_CRON",
    request=partition_before(INSIGHT_DAYS, timedelta(days=1)),
    description="Seed 000 daily insights, at 05:00 UTC: yesterday's, per workspace with an active connection.")
