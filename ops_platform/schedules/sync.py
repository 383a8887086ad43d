"""Seed 004 analytics sync every 15 minutes: today's partition, rows changed since the watermark."""

from ops_platform.assets.sync import DAILY, WAREHOUSE_ASSETS
from ops_platform.framework.schedules import gated_schedule, partition_before
from ops_platform.jobs.sync import warehouse_sync_job

INCREMENTAL = {"ops": {a.op.name: {"config": {"mode": "incremental"}} for a in WAREHOUSE_ASSETS}}

warehouse_sync_schedule = gated_schedule(
    "warehouse_sync_schedule", warehouse_sync_job, "*/15 * * * *", env_var="ANALYTICS_SYNC_INTERVAL",
    request=partition_before(DAILY, run_config=INCREMENTAL, tags={"ops/sync_mode": "incremental"}),
    description="Seed 004 analytics sync, every 15 minutes: rows changed since the watermark.")
