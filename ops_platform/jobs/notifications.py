"""Runs that deliver batches of notifications: what sensors launch when they have something to say.

Many notifications do not mean many runs: `notify_requests` cuts messages into batches, each one
run whose run_key is made from its dedup keys (and the retry window), so a sensor that sees the same
messages again asks for the same runs and Dagster launches each once.

The notification scheduler of seed 004 (a cron and time zone per row) launches
`scheduled_notifications_job`: each due time of a row is sent once.
"""

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any

import dagster as dg
from sqlalchemy import Connection

from ops_platform.framework.controls import ALWAYS_RUNS, COMMS, KILL_SWITCH, NOTIFY_JOB, gate_tags
from ops_platform.notifications.cron_rows import SCHEDULED, Due, DueBatchConfig, deliver_batch
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.framework.run_keys import batches, run_key
from ops_platform.notifications import Notification, NotifierResource, Severity
from ops_platform.resources.postgres import PostgresResource

BATCH_SIZE = 500


class NotifyConfig(dg.Config):
    messages: list[Notification]


# No gates of its own: the policy layer applies kill switch, comms and quiet hours to each message
# and records why anything was held back.
@dg.op(tags=gate_tags(ALWAYS_RUNS), retry_policy=DEFAULT_RETRY_POLICY)
def send_notifications(context: dg.OpExecutionContext, config: NotifyConfig, notifier: NotifierResource) -> dg.Output:
    guard_run(context, notifier.postgres)
    statuses = notifier.send_batch(config.messages)
    summary = {status: statuses.count(status) for status in sorted(set(statuses))}
    context.log.info(f"notifications: {summary}")
    return dg.Output(None, metadata=summary)


@dg.job(tags={"ops/kind": "notification"}, description="Delivers a batch of notifications through the policy layer.")
def notify_job():
    send_notifications()


def notify_requests(source: str, messages: Sequence[Notification], batch_size: int = BATCH_SIZE,
                    at: datetime | None = None) -> list[dg.RunRequest]:
    """One run per batch of `batch_size`, keyed by the batch's dedup keys and the retry window."""
    ordered = sorted(messages, key=lambda m: m.dedup_key)
    requests = []
    for batch in batches(ordered, batch_size):
        requests.append(dg.RunRequest(
            run_key=run_key(source, (m.dedup_key for m in batch), at),
            job_name=notify_job.name,
            run_config={"ops": {"send_notifications": {"config": {"messages": [m.model_dump(mode="json") for m in batch]}}}},
            tags={"ops/source": source, "ops/messages": str(len(batch))},
        ))
    return requests


@dg.op(tags=gate_tags((KILL_SWITCH, COMMS)), retry_policy=DEFAULT_RETRY_POLICY)
def release_held_notifications(context: dg.OpExecutionContext, notifier: NotifierResource) -> dg.Output:
    guard_run(context, notifier.postgres)
    released = notifier.release_held()
    context.log.info(f"held notifications released: {released or 'none (quiet hours, or nothing held)'}")
    return dg.Output(None, metadata={status: count for status, count in released.items()})


@dg.job(tags={"ops/kind": "notification"},
        description="Delivers the messages quiet hours held back, once quiet hours are over.")
def release_held_job():
    release_held_notifications()


def scheduled_message(conn: Connection, row: Mapping[str, Any], due: Due) -> Notification:
    return Notification(
        type=row["type"], severity=Severity(row["severity"]), title=row["title"], body=row["body"],
        dedup_key=f"scheduled:{due.key}", meta={"schedule_id": row["id"], "due_at": due.due_at.isoformat()},
        channels=tuple(row["channels"]) or None, recipients=tuple(row["recipients"]),
    )


@dg.op(tags=gate_tags(NOTIFY_JOB), retry_policy=DEFAULT_RETRY_POLICY)
def fire_scheduled_notifications(context: dg.OpExecutionContext, config: DueBatchConfig, postgres: PostgresResource,
                                 notifier: NotifierResource) -> dg.Output:
    guard_run(context, postgres)
    return deliver_batch(context, postgres, notifier, SCHEDULED, config, scheduled_message)


@dg.job(tags={"ops/kind": "notification"},
        description="Sends due scheduled notifications (seed 004), once per due time; missed times collapse into one.")
def scheduled_notifications_job():
    fire_scheduled_notifications()
