"""Seed 002 healthCheck every 30 minutes, even when jobs are disabled."""

from ops_platform.framework.controls import ALWAYS_RUNS
from ops_platform.framework.schedules import gated_schedule
from ops_platform.jobs.operational import health_check_job

health_check_schedule = gated_schedule("health_check_schedule", health_check_job, "*/30 * * * *", gates=ALWAYS_RUNS,
                                       description="Seed 002 healthCheck, every 30 minutes; runs even when jobs are disabled.")
