"""Seed 004 synthetic monitoring on `SYNTHETICS_SCHEDULE` (default every 5 minutes).

Both the cron string and OPS_SYNTHETIC_CHECKS are validated when the code location loads, so a
typo stops the load with a message naming the variable.
"""

from __future__ import annotations

import dagster as dg

from ops_platform.framework.controls import WRITE_JOB
from ops_platform.framework.guard import tick_gate
from ops_platform.jobs.monitoring import synthetics_job
from ops_platform.monitoring.synthetics import CHECKS_VAR, configured_checks, deployed_checks
from ops_platform.resources.postgres import PostgresResource
from ops_platform.settings import Settings, current

SCHEDULE_NAME = "synthetics_schedule"
CRON_VAR, DEFAULT_CRON = "SYNTHETICS_SCHEDULE", "*/5 * * * *"


def build_synthetics_schedule(settings: Settings | None = None) -> dg.ScheduleDefinition:
    """The schedule as the settings configure it; a ConfigError on a bad check list."""
    settings = settings or current()
    deployed_checks(settings)  # fail the load on a bad OPS_SYNTHETIC_CHECKS, not the first run

    @dg.schedule(name=SCHEDULE_NAME, job=synthetics_job, cron_schedule=settings.cron(CRON_VAR, DEFAULT_CRON),
                 execution_timezone="UTC", default_status=dg.DefaultScheduleStatus.RUNNING,
                 description=f"Seed 004 synthetic monitoring, every 5 minutes. Override with {CRON_VAR}.")
    def synthetics_schedule(context: dg.ScheduleEvaluationContext, postgres: PostgresResource):
        skip = tick_gate(postgres, SCHEDULE_NAME, WRITE_JOB, at=context.scheduled_execution_time)
        if skip:
            return skip
        if not configured_checks(postgres):
            return dg.SkipReason(f"no synthetic checks configured: set {CHECKS_VAR} or add rows to synthetic_checks")
        return dg.RunRequest()

    return synthetics_schedule


synthetics_schedule = build_synthetics_schedule()
