"""Every 30 s: when the retry queue has work, one run of the processor.

The run_key is made from the ids, attempt numbers and statuses of the work it sees, and the
10-minute window: ticks that see the same work while its run is pending launch one run; after
a pass the attempts change, so the next pass gets a new key. A run that ended without touching
its jobs (refused, crashed before claiming) is tried again in the next window. Two runs at once
would be harmless anyway: claims use FOR UPDATE SKIP LOCKED.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg

from ops_platform.framework.controls import WRITE_JOB
from ops_platform.framework.guard import tick_gate
from ops_platform.framework.run_keys import run_key
from ops_platform.jobs.retry_queue import retry_queue_job
from ops_platform.resources.postgres import PostgresResource
from ops_platform.retry_queue.queue import pending_work


def run_request_for(work: Sequence, at: datetime) -> dg.RunRequest:
    """`work`: (id, attempts, status) rows from `pending_work`."""
    seen = (f"{w.id}:{w.attempts}:{w.status}" for w in sorted(work, key=lambda w: w.id))
    return dg.RunRequest(run_key=run_key("retry_queue", seen, at), tags={"ops/retry_jobs": str(len(work))})


@dg.sensor(job=retry_queue_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Seed 003 process_retry_queue (every 30 s): ready retry jobs, abandoned claims, "
                       "dead jobs not yet notified.")
def retry_queue_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
    now = datetime.now(UTC)
    skip = tick_gate(postgres, "retry_queue_sensor", WRITE_JOB, at=now)
    if skip:
        return dg.SensorResult(skip_reason=skip)
    with postgres.begin() as conn:
        work = pending_work(conn, now)
    if not work:
        return dg.SensorResult(skip_reason=dg.SkipReason("no retry jobs are ready"))
    return dg.SensorResult(run_requests=[run_request_for(work, now)])
