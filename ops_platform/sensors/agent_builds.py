"""Seed 002 checkStalledBuilds, every 10 minutes: builds running for 30+ minutes become one run that fails and notifies them.

The run_key is made from the build ids and the hour, so ticks that see the same stalled builds
while their run is pending launch one run, and a run that was refused or failed is tried again the
next hour; the job is idempotent for builds that appear again.
"""

import hashlib
from datetime import UTC, datetime

import dagster as dg

from ops_platform.agent_builds.stalled_builds import stalled_build_ids
from ops_platform.framework.controls import WRITE_JOB
from ops_platform.framework.guard import tick_gate
from ops_platform.jobs.agent_builds import stalled_builds_job
from ops_platform.resources.postgres import PostgresResource


@dg.sensor(job=stalled_builds_job, minimum_interval_seconds=600, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Seed 002 checkStalledBuilds (*/10): running builds started more than 30 minutes ago.")
def stalled_builds_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
    skip = tick_gate(postgres, "stalled_builds_sensor", WRITE_JOB)
    if skip:
        return dg.SensorResult(skip_reason=skip)
    with postgres.begin() as conn:
        ids = stalled_build_ids(conn)
    if not ids:
        return dg.SensorResult(skip_reason=dg.SkipReason("no stalled builds"))
    digest = hashlib.sha256(",".join(map(str, ids)).encode()).hexdigest()[:16]
    hour = datetime.now(UTC).strftime("%Y%m%d%H")
    return dg.SensorResult(
        run_requests=[
            dg.RunRequest(
                run_key=f"stalled_builds:{digest}:{hour}",
                run_config={"ops": {"fail_stalled_builds": {"config": {"build_ids": ids}}}},
                tags={"ops/stalled_builds": str(len(ids))},
            )
        ]
    )
