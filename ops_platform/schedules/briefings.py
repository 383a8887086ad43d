"""Seed 003's daily messages: the morning call at 06:00 and the daily digest at 08:00, Central time.

Each tick passes its scheduled time to the run, so the local date (and with it the dedup key that
makes each message once a day) is the tick's, however late the run starts.
"""

from __future__ import annotations

import dagster as dg

from ops_platform.framework.controls import NOTIFY_JOB
from ops_platform.framework.cron import zone
from ops_platform.framework.schedules import RequestFn, gated_schedule
from ops_platform.jobs.briefings import (
    CALL_TIMEZONE,
    DIGEST_TIMEZONE,
    daily_digest,
    daily_digest_job,
    morning_call,
    morning_call_job,
)


def _at_tick(op_name: str, source: str, timezone: str) -> RequestFn:
    def request(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        tick = context.scheduled_execution_time
        local_day = tick.astimezone(zone(timezone))
        return dg.RunRequest(run_key=f"{source}:{local_day:%Y-%m-%d}",
                             run_config={"ops": {op_name: {"config": {"at": tick.isoformat()}}}})
    return request


morning_call_schedule = gated_schedule(
    "morning_call_schedule", morning_call_job, "0 6 * * *", env_var="MORNING_CALL_CRON",
    timezone=CALL_TIMEZONE, gates=NOTIFY_JOB, request=_at_tick(morning_call.name, "morning_call", CALL_TIMEZONE),
    description="Seed 003 morning call, daily at 06:00 Central.")
daily_digest_schedule = gated_schedule(
    "daily_digest_schedule", daily_digest_job, "0 8 * * *", env_var="DAILY_DIGEST_CRON",
    timezone=DIGEST_TIMEZONE, gates=NOTIFY_JOB, request=_at_tick(daily_digest.name, "daily_digest", DIGEST_TIMEZONE),
    description="Seed 003 daily digest, daily at 08:00 Central, ≤ 5 bullets, once a day.")
