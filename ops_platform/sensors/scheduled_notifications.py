"""Every minute: the notification scheduler of seed 004, a cron expression and time zone per DB row.

Rows without next_fire_at get it computed; an invalid cron or time zone is written to that row's
last_error and the other rows go on; a due row fires once, however many of its times were missed.
"""

import dagster as dg

from ops_platform.digests.cron_rows import SCHEDULED, due_sensor_result
from ops_platform.framework.controls import NOTIFY_JOB
from ops_platform.jobs.scheduled_notifications import fire_scheduled_notifications, scheduled_notifications_job
from ops_platform.resources.postgres import PostgresResource


@dg.sensor(job=scheduled_notifications_job, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Seed 004 notification scheduler: scheduled_notifications rows due → one run per batch.")
def scheduled_notifications_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
    return due_sensor_result(context, postgres, "scheduled_notifications_sensor", SCHEDULED,
                             fire_scheduled_notifications.name, NOTIFY_JOB)
