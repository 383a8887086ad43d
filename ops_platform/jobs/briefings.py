"""Seed 003's daily briefings as jobs: the morning call (06:00) and the daily digest (08:00), Central time.

Each run carries the tick's time (`at`), so the local date, and with it the dedup key that makes
each message once a day, is the tick's however late the run starts.
"""

from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta

import dagster as dg
from sqlalchemy import text

from ops_platform.briefings.daily_digest import gather, link, record, recorded
from ops_platform.briefings.morning_call import spoken_seconds, status_script
from ops_platform.framework.controls import NOTIFY_JOB, gate_tags
from ops_platform.framework.cron import zone
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.monitoring.incidents import Incident, open_incidents, unsent_notifications
from ops_platform.notifications import Notification, NotifierResource, Severity
from ops_platform.resources.postgres import PostgresResource

CALL_TIMEZONE = "America/Chicago"


class MorningCallConfig(dg.Config):
    call_channel: str = "call"
    fallback_channel: str = "telegram"
    recipients: list[str] = []
    at: str | None = None  # ISO time of the call (the schedule passes its tick); default: now
    timezone: str = CALL_TIMEZONE
    retry_after_seconds: int = 120  # seed 003: "Retry once after 2 minutes"


CALL_FAILED_DAYS_ALERT = 3  # seed 003: "Alert if 3+ consecutive failures"
_STATUS_SQL = text("SELECT status, created_at FROM notifications WHERE dedup_key = :k")


def place_morning_call(postgres: PostgresResource, notifier: NotifierResource, at: datetime,
                       call_channel: str = "call", fallback_channel: str = "telegram",
                       recipients: tuple[str, ...] = (), timezone: str = CALL_TIMEZONE,
                       now: datetime | None = None, retry_after: timedelta = timedelta(minutes=2)) -> dict:
    """Seed 003's morning call, once per local day: call; if the call fails, call once more 2 minutes later;
    if that fails too, send the script as a Telegram text. Never both a call and the text: the text goes
    only after both calls are recorded failed, and failed calls are not redelivered by the retry queue
    (notifications/policy.py REDELIVERY). Each step is keyed by the day, so a rerun repeats none of them.

    Returns {"day", "call", ...}: "retry_in_seconds" when the second call is not due yet (the op then asks
    Dagster to retry after that wait), "retry" and "text" statuses when they were tried. The third day in a
    row that no call went through opens a WARN incident `morning_call_failing`.
    """
    now = now or datetime.now(UTC)
    local = at.astimezone(zone(timezone))
    day = f"{local:%Y-%m-%d}"
    with postgres.begin() as conn:
        script = status_script(conn, at, f"{local:%A, %B} {local.day}")
    meta = {"call_type": "status_summary", "words": len(script.split()), "seconds": spoken_seconds(script)}

    def send(message_type: str, key: str, title: str, channel: str) -> tuple[str, datetime | None]:
        notifier.send(Notification(type=message_type, severity=Severity.INFO, title=title, body=script,
                                   dedup_key=key, meta=meta, channels=(channel,), recipients=recipients))
        with postgres.begin() as conn:  # the recorded outcome, whichever run placed it
            row = conn.execute(_STATUS_SQL, {"k": key}).first()
        return (row.status, row.created_at) if row else ("duplicate", None)

    first, first_at = send("morning_call", f"morning_call:{day}", "Morning Status Call", call_channel)
    result = {"day": day, "call": first, **meta}
    if first != "failed":
        return result
    wait = (first_at + retry_after - now).total_seconds() if first_at else 0
    if wait > 0:
        return result | {"retry_in_seconds": round(wait, 1)}
    result["retry"], _ = send("morning_call", f"morning_call:{day}:retry", "Morning Status Call", call_channel)
    if result["retry"] != "failed":
        return result
    result["text"], _ = send("morning_call_text", f"morning_call_text:{day}",
                             "Morning status (the call could not be placed)", fallback_channel)
    _alert_if_failing(postgres, notifier, local.date(), now)
    return result


_FAILED_CALL_DAYS_SQL = text("""
SELECT count(*) FROM notifications WHERE dedup_key = ANY(:keys) AND status = 'failed'
""")


def _alert_if_failing(postgres: PostgresResource, notifier: NotifierResource, day: date, now: datetime) -> None:
    days = [day - timedelta(days=n) for n in range(CALL_FAILED_DAYS_ALERT)]
    with postgres.begin() as conn:
        failed = conn.execute(_FAILED_CALL_DAYS_SQL, {"keys": [f"morning_call:{d}:retry" for d in days]}).scalar_one()
        if failed < CALL_FAILED_DAYS_ALERT:
            return
        incident = Incident("morning_call_failing", "morning_call", Severity.WARN,
                            f"Morning call failed {failed} days in a row",
                            f"No morning call went through on {', '.join(map(str, reversed(days)))}; the text "
                            "fallback was sent instead. Check the call channel.")
        open_incidents(conn, [incident], now)
        messages = unsent_notifications(conn, [incident], now)
    notifier.send_batch(messages, now)


@dg.op(tags=gate_tags(NOTIFY_JOB), retry_policy=DEFAULT_RETRY_POLICY)
def morning_call(context: dg.OpExecutionContext, config: MorningCallConfig, postgres: PostgresResource,
                 notifier: NotifierResource) -> dg.Output:
    guard_run(context, postgres)
    at = datetime.fromisoformat(config.at) if config.at else datetime.now(UTC)
    result = place_morning_call(postgres, notifier, at, config.call_channel, config.fallback_channel,
                                tuple(config.recipients), config.timezone,
                                retry_after=timedelta(seconds=config.retry_after_seconds))
    if "retry_in_seconds" in result:
        context.log.info(f"morning call {result['day']} failed; calling once more in {result['retry_in_seconds']} s")
        raise dg.RetryRequested(max_retries=context.retry_number + 1, seconds_to_wait=result["retry_in_seconds"])
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
