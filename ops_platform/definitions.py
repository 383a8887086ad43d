"""The code location: every asset, job, schedule and sensor of ops_platform."""

import dagster as dg

from ops_platform.assets.agent_builds import build_stats, inactive_users
from ops_platform.assets.agent_stats import agent_stats_cache
from ops_platform.assets.campaigns import CAMPAIGN_ASSETS
from ops_platform.assets.operational import OPERATIONAL, table_size_checks
from ops_platform.assets.warehouse import WAREHOUSE_ASSETS, WAREHOUSE_CHECKS
from ops_platform.jobs.canvas_alerts import canvas_alerts_job
from ops_platform.jobs.digests import digests_job
from ops_platform.jobs.events import events_job
from ops_platform.jobs.notify import notify_job, release_held_job
from ops_platform.jobs.retry_queue import retry_queue_job
from ops_platform.jobs.scheduled_notifications import scheduled_notifications_job
from ops_platform.jobs.stalled_builds import stalled_builds_job
from ops_platform.jobs.synthetics import synthetics_job
from ops_platform.resources.from_env import build_resources
from ops_platform.schedules import JOBS, SCHEDULES
from ops_platform.schedules.daily import DAILY_JOBS, DAILY_SCHEDULES
from ops_platform.schedules.synthetics import synthetics_schedule
from ops_platform.sensors.audit import AUDIT_SENSORS
from ops_platform.sensors.canvas_alerts import canvas_alerts_sensor
from ops_platform.sensors.dead_run_workers import dead_run_workers
from ops_platform.sensors.digests import digests_sensor
from ops_platform.sensors.events_outbox import events_outbox_sensor
from ops_platform.sensors.health import health_monitor
from ops_platform.sensors.held_notifications import held_notifications_sensor
from ops_platform.sensors.retry_queue import retry_queue_sensor
from ops_platform.sensors.run_failures import job_failure_streaks
from ops_platform.sensors.scheduled_notifications import scheduled_notifications_sensor
from ops_platform.sensors.stalled_builds import stalled_builds_sensor
from ops_platform.sensors.warehouse_backfills import warehouse_backfill_sensor
from ops_platform.sensors.watchers import watchers_sensor

defs = dg.Definitions(
    assets=[*OPERATIONAL, agent_stats_cache, build_stats, inactive_users, *WAREHOUSE_ASSETS, *CAMPAIGN_ASSETS],
    asset_checks=[*WAREHOUSE_CHECKS, table_size_checks],
    jobs=[*JOBS, stalled_builds_job, notify_job, release_held_job, retry_queue_job, events_job, synthetics_job,
          digests_job, scheduled_notifications_job, canvas_alerts_job, *DAILY_JOBS],
    schedules=[*SCHEDULES, synthetics_schedule, *DAILY_SCHEDULES],
    sensors=[stalled_builds_sensor, health_monitor, held_notifications_sensor, retry_queue_sensor, events_outbox_sensor,
             watchers_sensor, warehouse_backfill_sensor, job_failure_streaks, digests_sensor,
             scheduled_notifications_sensor, canvas_alerts_sensor, dead_run_workers, *AUDIT_SENSORS],
    resources=build_resources(),
)
