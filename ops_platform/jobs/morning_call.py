"""Seed 003 morning call (06:00 Central): a ≤ 60 s status script by voice call, by text if the call fails."""

from datetime import UTC, datetime

import dagster as dg
from sqlalchemy import text

from ops_platform.digests.cron import zone
from ops_platform.digests.morning_call import spoken_seconds, status_script
from ops_platform.framework.controls import NOTIFY_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.notifications import Notification, NotifierResource, Severity
from ops_platform.resources.postgres import PostgresResource

CALL_TIMEZONE = "America/Chicago"


class MorningCallConfig(dg.Config):
    call_channel: str = "call"
    fallback_channel: str = "telegram"
    recipients: list[str] = []
    at: str | None = None  # ISO time of the call (the schedule passes its tick); default: now
    timezone: str = CALL_TIMEZONE


def place_morning_call(postgres: PostgresResource, notifier: NotifierResource, at: datetime,
                       call_channel: str = "call", fallback_channel: str = "telegram",
                       recipients: tuple[str, ...] = (), timezone: str = CALL_TIMEZONE) -> dict:
    """Call once per local day; when the call failed (now or in an earlier run), send the text once."""
    local = at.astimezone(zone(timezone))
    with postgres.begin() as conn:
        script = status_script(conn, at, f"{local:%A, %B} {local.day}")
    meta = {"call_type": "status_summary", "words": len(script.split()), "seconds": spoken_seconds(script)}
    call = Notification(type="morning_call", severity=Severity.INFO, title="Morning Status Call", body=script,
                        dedup_key=f"morning_call:{local:%Y-%m-%d}", meta=meta, channels=(call_channel,),
                        recipients=recipients)
    status = notifier.send(call)
    if status == "duplicate":  # an earlier run placed (or failed to place) today's call
        with postgres.begin() as conn:
            status = conn.execute(text("SELECT status FROM notifications WHERE dedup_key = :k"),
                                  {"k": call.dedup_key}).scalar_one()
    result = {"day": f"{local:%Y-%m-%d}", "call": status, **meta}
    if status == "failed":
        fallback = Notification(type="morning_call_text", severity=Severity.INFO,
                                title="Morning status (the call could not be placed)", body=script,
                                dedup_key=f"morning_call_text:{local:%Y-%m-%d}", meta=meta,
                                channels=(fallback_channel,), recipients=recipients)
        result["text"] = notifier.send(fallback)
    return result


@dg.op(tags=gate_tags(NOTIFY_JOB), retry_policy=DEFAULT_RETRY_POLICY)
def morning_call(context: dg.OpExecutionContext, config: MorningCallConfig, postgres: PostgresResource,
                 notifier: NotifierResource) -> dg.Output:
    guard_run(context, postgres)
    at = datetime.fromisoformat(config.at) if config.at else datetime.now(UTC)
    result = place_morning_call(postgres, notifier, at, config.call_channel, config.fallback_channel,
                                tuple(config.recipients), config.timezone)
    context.log.info(f"morning call {result['day']}: call {result['call']}, text {result.get('text', 'not needed')}")
    return dg.Output(None, metadata=result)


@dg.job(tags={"ops/kind": "notification"},
        description="Seed 003 morning call: read-only status script (≤ 60 s) by call, telegram text as fallback.")
def morning_call_job():
    morning_call()
