"""Every schedule comes from one factory: cron from the seeds (overridable by env), gated by controls."""

from __future__ import annotations

from collections.abc import Callable
from datetime import timedelta

import dagster as dg

from ops_platform.framework.controls import WRITE_JOB
from ops_platform.framework.guard import tick_gate
from ops_platform.resources.postgres import PostgresResource
from ops_platform.settings import current

RequestFn = Callable[[dg.ScheduleEvaluationContext], dg.RunRequest]


def gated_schedule(
    name: str,
    job: dg.UnresolvedAssetJobDefinition | dg.JobDefinition,
    cron: str,
    *,
    env_var: str | None = None,
    timezone: str = "UTC",
    gates: tuple[str, ...] = WRITE_JOB,
    request: RequestFn = lambda context: dg.RunRequest(),
    description: str = "",
) -> dg.ScheduleDefinition:
    """A running-by-default schedule whose ticks skip (with the reason) while its controls are off.

    `env_var` names the variable that may override `cron` (a field of Settings, validated when the
    settings load: a bad value stops the code location's load with a sentence naming the variable).
    """
    cron = current().cron(env_var, cron)
    override = f" Override with {env_var}." if env_var else ""

    @dg.schedule(name=name, job=job, cron_schedule=cron, execution_timezone=timezone,
                 default_status=dg.DefaultScheduleStatus.RUNNING, description=f"{description}{override}".strip())
    def _schedule(context: dg.ScheduleEvaluationContext, postgres: PostgresResource):
        return tick_gate(postgres, name, gates, at=context.scheduled_execution_time) or request(context)

    return _schedule


def partition_before(partitions, lag: timedelta = timedelta(0), **request_args) -> RequestFn:
    """A request for the partition holding (scheduled time − lag): today with no lag, the hour that just
    ended with one hour, yesterday with one day."""
    def request(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        at = context.scheduled_execution_time - lag
        return dg.RunRequest(partition_key=partitions.get_partition_key_for_timestamp(at.timestamp()), **request_args)
    return request
