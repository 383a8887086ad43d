"""Sensors that launch notification runs: held messages released after quiet hours, and the seed 004 scheduler.

- held_notifications_sensor (every 5 minutes): the run_key names the held set (count, oldest and
  newest id) and the retry window, so ticks that see the same held messages launch one run, and a
  run that was refused is asked for again. The kill switch and comms gates keep held messages
  waiting (not discarded) while either is off.
- scheduled_notifications_sensor (every minute): a cron expression and time zone per DB row. Rows
  without next_fire_at get it computed; an invalid cron or time zone is written to that row's
  last_error and the other rows go on; a due row fires once, however many of its times were missed.
"""

from datetime import UTC, datetime

import dagster as dg
from sqlalchemy import text

from ops_platform.framework.controls import COMMS, KILL_SWITCH, NOTIFY_JOB, read_controls
from ops_platform.notifications.cron_rows import SCHEDULED, due_sensor_result
from ops_platform.framework.guard import tick_gate
from ops_platform.framework.run_keys import run_key
from ops_platform.jobs.notifications import fire_scheduled_notifications, release_held_job, scheduled_notifications_job
from ops_platform.resources.postgres import PostgresResource


@dg.sensor(job=release_held_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Delivers notifications held by quiet hours once they are over.")
def held_notifications_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
    now = datetime.now(UTC)
    skip = tick_gate(postgres, "held_notifications_sensor", (KILL_SWITCH, COMMS), at=now)
    if skip:
        return dg.SensorResult(skip_reason=skip)
    with postgres.begin() as conn:
        if read_controls(conn).in_quiet_hours(now):
            return dg.SensorResult(skip_reason=dg.SkipReason("quiet hours: held messages wait"))
        held, oldest, newest = conn.execute(text(
            "SELECT count(*), min(id), max(id) FROM notifications WHERE status = 'held'")).one()
    if not held:
        return dg.SensorResult(skip_reason=dg.SkipReason("nothing held"))
    key = run_key("release_held", (str(held), str(oldest), str(newest)), now)
    return dg.SensorResult(run_requests=[dg.RunRequest(run_key=key, tags={"ops/held": str(held)})])


@dg.sensor(job=scheduled_notifications_job, minimum_interval_seconds=60,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Seed 004 notification scheduler: scheduled_notifications rows due → one run per batch.")
def scheduled_notifications_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
    return due_sensor_result(context, postgres, "scheduled_notifications_sensor", SCHEDULED,
                             fire_scheduled_notifications.name, NOTIFY_JOB)
