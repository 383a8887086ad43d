"""The events outbox job: one run handles one batch of events, each by its name, each exactly once."""

from collections import Counter

import dagster as dg
import httpx
from pydantic import Field

from ops_platform.events.email import EMAIL_SEND, EMAIL_SEND_BATCH, send_emails
from ops_platform.events.outbox import OUTCOMES, Event, Handler, Result, consume
from ops_platform.events.subscriptions import SUBSCRIBED, subscriptions
from ops_platform.events.webhooks import WEBHOOK_SEND, WebhookSettings, deliver_webhook
from ops_platform.framework.controls import NOTIFY_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.notifications import NotifierResource
from ops_platform.resources.postgres import PostgresResource
from ops_platform.settings import ConfigError

HANDLED_EVENTS = (WEBHOOK_SEND, EMAIL_SEND, EMAIL_SEND_BATCH, *SUBSCRIBED)  # the sensor hands over only these


class EventsConfig(dg.Config):
    event_ids: list[int] = Field(description="Outbox event ids; events already handled are skipped.")
    webhook_attempts: int = Field(default=3, ge=1, le=10, description="Tries per webhook delivery (seed 001: 3).")
    webhook_backoff_seconds: float = Field(default=1.0, ge=0, description="Base of the exponential backoff.")
    webhook_timeout_seconds: float = Field(default=10.0, gt=0)


def dispatch_table(postgres: PostgresResource, notifier: NotifierResource, config: EventsConfig,
                   http: httpx.Client) -> dict[str, Handler]:
    """Event name → handler. Any other name is recorded as 'ignored'."""
    webhook = WebhookSettings(config.webhook_attempts, config.webhook_backoff_seconds, config.webhook_timeout_seconds)

    def email(event: Event) -> Result:
        return send_emails(postgres, notifier.channels, event)

    return {
        WEBHOOK_SEND: lambda event: deliver_webhook(postgres, event, webhook, http),
        EMAIL_SEND: email,
        EMAIL_SEND_BATCH: email,
    } | subscriptions(postgres, notifier.channels)


@dg.op(tags=gate_tags(NOTIFY_JOB), retry_policy=DEFAULT_RETRY_POLICY)
def handle_events(context: dg.OpExecutionContext, config: EventsConfig, postgres: PostgresResource,
                  notifier: NotifierResource) -> dg.Output:
    guard_run(context, postgres)

    def report(event: Event, result: Result) -> None:
        if result.outcome in ("failed", "invalid"):
            context.log.warning(f"event {event.id} ({event.name}) {result.outcome}: {result.error}")

    with httpx.Client() as http:
        try:
            counts: Counter = consume(postgres, config.event_ids, dispatch_table(postgres, notifier, config, http),
                                      context.run.run_id, on_result=report)
        except ConfigError as err:  # a deployment problem: retrying cannot help; re-execute once it is fixed
            raise dg.Failure(description=f"events not handled: {err}", allow_retries=False) from None
    if counts["not_found"]:
        context.log.warning(f"{counts['not_found']} event id(s) of the config are not in events_outbox")
    fixed = (*OUTCOMES, "already_handled", "not_found")
    summary = {"events": len(config.event_ids)} | {k: counts[k] for k in fixed} | {
        k: v for k, v in sorted(counts.items()) if k not in fixed}
    context.log.info(f"events outbox: {summary}")
    return dg.Output(None, metadata=summary)


@dg.job(tags={"ops/kind": "notification"},
        description="Events outbox: seed 001's webhook/send (signed POST, 3 attempts) and email/send(-batch) (batches "
                    "of 10); seed 004's subscriptions (events/subscriptions.py).")
def events_job():
    handle_events()
