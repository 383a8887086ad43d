"""Every minute: canvas digests (seed 000) whose next_send_at has come launch one run per batch.

The run_key is made from (digest id, due time), so two ticks that see the same due digest ask for
the same run; the run records the due time under a unique key and moves next_send_at on.
"""

import dagster as dg

from ops_platform.digests.content import parse_include
from ops_platform.framework.controls import NOTIFY_JOB
from ops_platform.notifications.cron_rows import DIGESTS, due_sensor_result
from ops_platform.jobs.digests import digests_job, send_digests
from ops_platform.resources.postgres import PostgresResource


@dg.sensor(job=digests_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Seed 000 digests: next_send_at ≤ now → one run per batch; invalid rows report last_error.")
def digests_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
    return due_sensor_result(context, postgres, "digests_sensor", DIGESTS, send_digests.name, NOTIFY_JOB,
                             check=lambda row: parse_include(row["include"]))
