"""Notifications and the retry queue, in one place: a failed delivery goes in, the redelivery job comes
out, and the queue's dead jobs are told.

The dependency runs one way: notifications/ uses the queue (`enqueue`, `@handler`); the queue imports
nothing of notifications/ and asks for its dead-job notices through its own `DeadJobNotifier`
interface, which NotifierResource implements with `dead_job_notice`.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import Connection, text

from ops_platform.framework.controls import COMMS, KILL_SWITCH, read_controls
from ops_platform.framework.dead_letters import dead_letter
from ops_platform.notifications.message import Notification, Severity
from ops_platform.notifications.policy import DEAD_LETTER_SEVERITY, REDELIVERY
from ops_platform.outbound.retry import DeliveryError
from ops_platform.retry_queue.handlers import (
    Deferred, HandlerResources, PermanentError, TransientError, handler, payload_field)
from ops_platform.retry_queue.queue import MAX_ATTEMPTS, DeadJob, enqueue
from ops_platform.settings import ConfigError

REDELIVER = "notification.redeliver"
DEAD_KEY_PREFIX = "retry_dead:"

NOTIFICATION_SQL = text("SELECT * FROM notifications WHERE id = :id FOR UPDATE")
# Another channel of the same message still waiting in the queue keeps it 'failed'.
REDELIVERED_SQL = text("""
UPDATE notifications SET reason = concat_ws('; ', reason, CAST(:note AS text)),
       status = CASE WHEN other.waiting THEN status ELSE 'sent' END,
       sent_at = CASE WHEN other.waiting THEN sent_at ELSE now() END
FROM (SELECT EXISTS (SELECT 1 FROM retry_jobs WHERE job_name = 'notification.redeliver'
        AND dedup_key LIKE :prefix AND dedup_key <> :mine AND status <> 'completed') AS waiting) AS other
WHERE id = :id
""")


def on_delivery_failure(conn: Connection, notification_id: int, channel: str, error: str, attempts: int,
                        payload: dict, retry_at: datetime | None = None) -> None:
    """A channel gave up on a message after its inline attempts: the retry queue tries again later
    (5 attempts with backoff, or its type's rule in policy.REDELIVERY; in this transaction so the failure
    and the retry are recorded together;
    not before `retry_at`, the wait the provider asked for, when given) and dead-letters it when those
    run out. The queue's own dead-job notices are dead-lettered at once:
    retrying them through the channel that is failing could chain notices about notices."""
    key = f"notification:{notification_id}:{channel}"
    if str(payload.get("dedup_key", "")).startswith(DEAD_KEY_PREFIX):
        dead_letter(conn, source=f"notify:{channel}", dedup_key=key, error=error, attempts=attempts, payload=payload)
        return
    rule = REDELIVERY.get(payload.get("type", ""), (MAX_ATTEMPTS, timedelta(0)))
    if rule is None:  # its sender decides what happens next (the morning call)
        return
    tries, wait = rule
    due = datetime.now(UTC) + wait
    enqueue(conn, REDELIVER, {"notification_id": notification_id, "channel": channel, "type": payload.get("type")},
            dedup_key=key,
            run_at=max(due, retry_at) if retry_at else due, max_attempts=tries)


@handler(REDELIVER)
def redeliver_notification(payload: dict[str, Any], resources: HandlerResources) -> None:
    """Deliver a failed notification again through one channel; 'sent' once no channel is left to retry.

    Already 'sent' means an earlier attempt delivered it and crashed before recording that: done.
    A refusal that is not retryable (DeliveryError.retryable False) ends the job at once.
    """
    notification_id = payload_field(payload, "notification_id", int)
    channel = payload_field(payload, "channel", str)
    with resources.postgres.begin() as conn:
        row = conn.execute(NOTIFICATION_SQL, {"id": notification_id}).mappings().first()
        if row is None:
            raise PermanentError(f"notification {notification_id} does not exist")
        if row["status"] == "sent":
            return
        if row["status"] != "failed":
            raise PermanentError(f"notification {notification_id} is {row['status']!r}, not 'failed': not redelivered")
        blocked = read_controls(conn).blocked_by((KILL_SWITCH, COMMS))
        if blocked:  # wait for the control to be lifted; the message is not lost and no attempt is spent
            raise Deferred(f"notification {notification_id} waits: {blocked}")
        message = Notification.from_row(row)
        try:
            transport = resources.notifier.channel(channel)
        except ConfigError as err:
            raise PermanentError(str(err)) from None
        try:
            transport.deliver(notification_id, message.payload(notification_id), conn)
        except DeliveryError as err:
            if not err.retryable:
                raise PermanentError(str(err)) from None
            raise TransientError(str(err), err.retry_at) from None
        finally:
            close = getattr(transport, "close", None)
            if close:
                close()
        conn.execute(REDELIVERED_SQL, {
            "id": notification_id, "note": f"{channel}: redelivered by the retry queue",
            "prefix": f"notification:{notification_id}:%", "mine": f"notification:{notification_id}:{channel}"})


def dead_job_notice(job: DeadJob) -> Notification:
    """The notice of a retry job that died (dedup key retry_dead:<id>): WARN, or the severity
    DEAD_LETTER_SEVERITY gives the type of the message it was redelivering (the daily digest: SEV1)."""
    redelivered = (job.payload or {}).get("type") if job.job_name == REDELIVER else None
    return Notification(
        type="retry_job_dead", severity=DEAD_LETTER_SEVERITY.get(redelivered, Severity.WARN),
        title=f"Retry job {job.id} ({job.job_name}) failed permanently",
        body=f"After {job.attempts} attempt(s): {(job.last_error or 'no error recorded')[:500]}. The work is kept in"
             f" dead_letters ({job.dedup_key or f'retry_job:{job.id}'}) until someone resolves it.",
        dedup_key=f"{DEAD_KEY_PREFIX}{job.id}",
        meta={"retry_job_id": job.id, "job_name": job.job_name, "attempts": job.attempts},
    )
