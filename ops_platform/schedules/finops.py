"""Seed 004 FinOps cron: yesterday's cost aggregation."""

from datetime import timedelta

from ops_platform.assets.finops import COST_DAYS
from ops_platform.framework.schedules import gated_schedule, partition_before
from ops_platform.jobs.finops import cost_aggregation_job

cost_aggregation_schedule = gated_schedule(
    "cost_aggregation_schedule", cost_aggregation_job, "0 1 * * *", env_var="COST_AGGREGATION_CRON",
    request=partition_before(COST_DAYS, timedelta(days=1)),
    description="Seed 004 FinOps cost aggregation, daily at 01:00 UTC: yesterday.")
