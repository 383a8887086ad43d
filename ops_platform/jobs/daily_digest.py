"""Seed 003 daily digest (08:00 Central): the last 24 hours in at most five bullets, exactly once a day."""

from collections.abc import Sequence
from datetime import UTC, datetime

import dagster as dg

from ops_platform.digests import daily
from ops_platform.digests.cron import zone
from ops_platform.framework.controls import NOTIFY_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.notifications import NotifierResource
from ops_platform.resources.postgres import PostgresResource

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
        found = daily.recorded(conn, day)
        if found is None:
            digest = daily.gather(conn, at, day)
            if daily.record(conn, digest, digest.message(tuple(channels), tuple(recipients))):
                found = daily.recorded(conn, day)
    if found is None:  # a concurrent run recorded it first: read what it recorded
        with postgres.begin() as conn:
            found = daily.recorded(conn, day)
    message, sent = found
    if sent:
        return {"day": str(day), "status": "already_sent"}
    notifier.send(message)  # 'duplicate' when an earlier run sent it and stopped before linking
    with postgres.begin() as conn:
        status = daily.link(conn, day)
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
