"""A run that delivers a batch of notifications: what sensors launch when they have something to say."""

import dagster as dg

from ops_platform.framework.controls import ALWAYS_RUNS, gate_tags
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.notifications import Notification, NotifierResource, Severity


class MessageConfig(dg.Config):
    type: str
    severity: str
    title: str
    body: str
    dedup_key: str


class NotifyConfig(dg.Config):
    messages: list[MessageConfig]


# No gates of its own: the policy layer applies kill switch, comms and quiet hours to each message
# and records why anything was held back.
@dg.op(tags=gate_tags(ALWAYS_RUNS), retry_policy=DEFAULT_RETRY_POLICY)
def send_notifications(context: dg.OpExecutionContext, config: NotifyConfig, notifier: NotifierResource) -> dg.Output:
    statuses = [
        notifier.send(Notification(type=m.type, severity=Severity(m.severity), title=m.title, body=m.body,
                                   dedup_key=m.dedup_key))
        for m in config.messages
    ]
    summary = {status: statuses.count(status) for status in sorted(set(statuses))}
    context.log.info(f"notifications: {summary}")
    return dg.Output(None, metadata=summary)


@dg.job(description="Delivers a batch of notifications through the policy layer.")
def notify_job():
    send_notifications()


def notify_request(run_key: str, messages: list[Notification]) -> dg.RunRequest:
    return dg.RunRequest(
        run_key=run_key,
        run_config={"ops": {"send_notifications": {"config": {"messages": [
            {"type": m.type, "severity": str(m.severity), "title": m.title, "body": m.body, "dedup_key": m.dedup_key}
            for m in messages
        ]}}}},
    )
