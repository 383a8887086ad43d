"""Quiet hours hold messages back; when they end, this sensor launches the run that delivers them.

The run_key names the held set (count, oldest and newest id) and the retry window, so ticks that
see the same held messages launch one run, and a run that was refused is asked for again. The
kill switch and comms gates keep held messages waiting (not discarded) while either is off.
"""

from datetime import UTC, datetime

import dagster as dg
from sqlalchemy import text

from ops_platform.framework.controls import COMMS, KILL_SWITCH, read_controls
from ops_platform.framework.guard import tick_gate
from ops_platform.framework.run_keys import run_key
from ops_platform.jobs.notify import release_held_job
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
