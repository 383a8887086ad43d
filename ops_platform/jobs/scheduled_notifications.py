"""Scheduled notifications (seed 004): a row's message sent once per due time of its cron."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from sqlalchemy import Connection

from ops_platform.digests.cron_rows import SCHEDULED, Due, DueBatchConfig, deliver_batch
from ops_platform.framework.controls import NOTIFY_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.notifications import Notification, NotifierResource, Severity
from ops_platform.resources.postgres import PostgresResource


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
