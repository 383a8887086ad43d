"""Seed 003's daily briefings as jobs: the morning call (06:00) and the daily digest (08:00), Central time.

Each run carries the tick's time (`at`), so the local date, and with it the dedup key that makes
each message once a day, is the tick's however late the run starts.
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg
from sqlalchemy import text

from ops_platform.briefings.daily_digest import gather, link, record, recorded
from ops_platform.briefings.morning_call import spoken_seconds, status_script
from ops_platform.framework.controls import NOTIFY_JOB, gate_tags
from ops_platform.framework.cron import zone
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


DIGEST_TIMEZONE = "America/Chicago"


class DailyDigestConfig(dg.Config):
    channels: list[str] = ["email"]
    recipients: list[str] = []
    at: str | None = None  # ISO time the digest is for (the schedule passes its tick); default: now
    timezone: str = DIGEST_TIMEZONE  # whose calendar day makes it "once a day"


def send_daily_digest(postgres: PostgresResource, notifier: NotifierResource, at: datetime,
                      channels: Sequence[str] = ("email",), recipients: Sequence[str] = (),
                      timezone: str = DIGEST_TIMEZONE) -> dict:
    """Record, mark and send today's digest; a second call the same local day sends nothing."""
    day = at.astimezone(zone(timezone)).date()
    with postgres.begin() as conn:
        found = recorded(conn, day)
        if found is None:
            digest = gather(conn, at, day)
            if record(conn, digest, digest.message(tuple(channels), tuple(recipients))):
                found = recorded(conn, day)
    if found is None:  # a concurrent run recorded it first: read what it recorded
        with postgres.begin() as conn:
            found = recorded(conn, day)
    message, sent = found
    if sent:
        return {"day": str(day), "status": "already_sent"}
    notifier.send(message)  # 'duplicate' when an earlier run sent it and stopped before linking
    with postgres.begin() as conn:
        status = link(conn, day)
    return {"day": str(day), "status": status, "bullets": message.body.count("\n• ") + 1, **message.meta}


@dg.op(tags=gate_tags(NOTIFY_JOB), retry_policy=DEFAULT_RETRY_POLICY)
def daily_digest(context: dg.OpExecutionContext, config: DailyDigestConfig, postgres: PostgresResource,
                 notifier: NotifierResource) -> dg.Output:
    guard_run(context, postgres)
    at = datetime.fromisoformat(config.at) if config.at else datetime.now(UTC)
    result = send_daily_digest(postgres, notifier, at, config.channels, config.recipients, config.timezone)
    context.log.info(f"daily digest {result['day']}: {result['status']}")
    return dg.Output(None, metadata=result)


@dg.job(tags={"ops/kind": "notification"},
        description="Seed 003 daily digest: ≤ 5 bullets of the last 24 h, once per day (dedup daily_digest:{date}).")
def daily_digest_job():
    daily_digest()
