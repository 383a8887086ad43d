"""Dagster's own history, bounded daily (issue 13)."""

from ops_platform.framework.schedules import gated_schedule
from ops_platform.jobs.history import dagster_history_job

dagster_history_schedule = gated_schedule(
    "dagster_history_schedule", dagster_history_job, "30 4 * * *", env_var="OPS_DAGSTER_HISTORY_CRON",
    description="Old Dagster runs archived to ClickHouse and removed, daily at 04:30 UTC.")
