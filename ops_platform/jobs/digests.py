"""Canvas digests (seed 000): each due digest is built from its `include` config and sent once per due time."""

from collections.abc import Mapping
from typing import Any

import dagster as dg
from sqlalchemy import Connection

from ops_platform.digests.content import build_body, digest_period, parse_include
from ops_platform.framework.controls import NOTIFY_JOB, gate_tags
from ops_platform.framework.cron import zone
from ops_platform.notifications.cron_rows import DIGESTS, Due, DueBatchConfig, deliver_batch
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.notifications import Notification, NotifierResource, Severity
from ops_platform.resources.postgres import PostgresResource


def digest_message(conn: Connection, row: Mapping[str, Any], due: Due) -> Notification:
    include = parse_include(row["include"])
    since, until = digest_period(include, row["last_sent_at"], due.due_at)
    body, counts = build_body(conn, row["workspace_id"], include, since, until)
    local = due.due_at.astimezone(zone(row["timezone"]))
    return Notification(
        type="digest", severity=Severity.INFO, title=f"{row['name']}: digest of {local:%Y-%m-%d %H:%M %Z}",
        body=body, dedup_key=f"digest:{due.key}",
        meta={"digest_id": row["id"], "workspace_id": row["workspace_id"], "since": since.isoformat(),
              "until": until.isoformat(), **counts},
        channels=tuple(row["channels"]), recipients=tuple(row["recipients"]),
    )


@dg.op(tags=gate_tags(NOTIFY_JOB), retry_policy=DEFAULT_RETRY_POLICY)
def send_digests(context: dg.OpExecutionContext, config: DueBatchConfig, postgres: PostgresResource,
                 notifier: NotifierResource) -> dg.Output:
    guard_run(context, postgres)
    return deliver_batch(context, postgres, notifier, DIGESTS, config, digest_message)


@dg.job(tags={"ops/kind": "notification"}, description="Sends due canvas digests (seed 000), once per due time.")
def digests_job():
    send_digests()
