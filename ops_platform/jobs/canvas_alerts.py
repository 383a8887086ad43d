"""The run a canvas-alerts tick launches: fire a batch of rules that crossed into breach, once each, and
notify; send one "resolved" message for each rule of the batch that cleared.

Firing is a conditional UPDATE that re-checks the cooldown, so two runs (two ticks, a retried run)
cannot both fire a rule for different trigger times. A retry of the same trigger re-claims it and
sends again under the same dedup key `canvas_alert:{rule_id}:{trigger time}`, which the notifier's
unique index delivers at most once: a crash between firing and sending loses no alert. Resolving works
the same way: `breached` off and `last_resolved_at` set in one UPDATE, which a retry re-claims by that
time, under the dedup key `canvas_alert_resolved:{rule_id}:{time}`.
"""


from datetime import datetime

import dagster as dg
from sqlalchemy import text

from ops_platform.framework.controls import NOTIFY_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.notifications import Notification, NotifierResource, Severity
from ops_platform.resources.postgres import PostgresResource

ALERT_TYPE, RESOLVED_TYPE = "canvas_alert", "canvas_alert_resolved"
_RULE_COLUMNS = ("r.id, r.workspace_id, r.name, r.metric, r.aggregation, r.window_minutes, r.operator, r.threshold, "
                 "r.severity, r.channels, r.recipients, t.value")

FIRE_SQL = text("""
UPDATE alert_rules r SET last_triggered_at = CAST(:at AS timestamptz), last_value = t.value, breached = true
FROM unnest(CAST(:ids AS bigint[]), CAST(:values AS float8[])) AS t(id, value)
WHERE r.id = t.id AND r.enabled AND r.last_error IS NULL
  AND (r.last_triggered_at = CAST(:at AS timestamptz)  -- this trigger, claimed by an earlier attempt
       OR (NOT r.breached
           AND (r.last_triggered_at IS NULL
                OR (r.last_triggered_at < CAST(:at AS timestamptz)
                    AND r.last_triggered_at <= CAST(:at AS timestamptz) - make_interval(mins => r.cooldown_minutes)))))
RETURNING """ + _RULE_COLUMNS)
RESOLVE_SQL = text("""
UPDATE alert_rules r SET breached = false, last_resolved_at = CAST(:at AS timestamptz), last_value = t.value
FROM unnest(CAST(:ids AS bigint[]), CAST(:values AS float8[])) AS t(id, value)
WHERE r.id = t.id AND (r.breached OR r.last_resolved_at = CAST(:at AS timestamptz))
RETURNING """ + _RULE_COLUMNS)


class AlertTrigger(dg.Config):
    rule_id: int
    value: float


class CanvasAlertsConfig(dg.Config):
    trigger_at: str  # ISO time the rules were evaluated at: the trigger time
    triggers: list[AlertTrigger]
    resolved: list[AlertTrigger] = []  # rules in breach whose value cleared at trigger_at


def dedup_key(rule_id: int, at: datetime) -> str:
    return f"{ALERT_TYPE}:{rule_id}:{at:%Y-%m-%dT%H:%M:%SZ}"


def alert_message(rule, at: datetime) -> Notification:
    """The notification of one fired rule: its channels and recipients when set, else routed by severity."""
    condition = f"{rule.aggregation}({rule.metric}) over {rule.window_minutes} min = {rule.value:g}"
    return Notification(
        type=ALERT_TYPE,
        severity=Severity(rule.severity),
        title=f"Alert: {rule.name}",
        body=f"{condition}, {rule.operator} {rule.threshold:g} (workspace {rule.workspace_id}, "
             f"{at:%Y-%m-%d %H:%M} UTC).",
        dedup_key=dedup_key(rule.id, at),
        meta={"rule_id": rule.id, "workspace_id": rule.workspace_id, "metric": rule.metric, "value": rule.value,
              "operator": rule.operator, "threshold": rule.threshold, "trigger_at": at.isoformat()},
        channels=list(rule.channels) or None,
        recipients=list(rule.recipients),
    )


def resolved_message(rule, at: datetime) -> Notification:
    """The "resolved" message of a rule that left breach: to the same channels as its alert."""
    return Notification(
        type=RESOLVED_TYPE, severity=Severity(rule.severity), title=f"Resolved: {rule.name}",
        body=f"{rule.aggregation}({rule.metric}) over {rule.window_minutes} min = {rule.value:g}, no longer "
             f"{rule.operator} {rule.threshold:g} (workspace {rule.workspace_id}, {at:%Y-%m-%d %H:%M} UTC).",
        dedup_key=f"{RESOLVED_TYPE}:{rule.id}:{at:%Y-%m-%dT%H:%M:%SZ}",
        meta={"rule_id": rule.id, "workspace_id": rule.workspace_id, "metric": rule.metric, "value": rule.value,
              "resolved_at": at.isoformat()},
        channels=list(rule.channels) or None, recipients=list(rule.recipients))


def resolve_alerts(postgres: PostgresResource, notifier: NotifierResource, at: datetime,
                   values: dict[int, float]) -> tuple[list, list[str]]:
    """Take the rules (rule id → clearing value) out of breach and send their "resolved" messages."""
    if not values:
        return [], []
    with postgres.begin() as conn:
        resolved = sorted(conn.execute(RESOLVE_SQL, {"at": at, "ids": list(values), "values": list(values.values())}).all(),
                          key=lambda rule: rule.id)
    return resolved, notifier.send_batch([resolved_message(rule, at) for rule in resolved])


def fire_alerts(postgres: PostgresResource, notifier: NotifierResource, at: datetime,
                values: dict[int, float]) -> tuple[list, list[str]]:
    """Fire the rules (rule id → triggering value) still allowed to fire at `at`, and notify them.

    Returns (fired rule rows, notification statuses).
    """
    with postgres.begin() as conn:
        fired = conn.execute(FIRE_SQL, {"at": at, "ids": list(values), "values": list(values.values())}).all()
    fired = sorted(fired, key=lambda rule: rule.id)
    return fired, notifier.send_batch([alert_message(rule, at) for rule in fired])


@dg.op(tags=gate_tags(NOTIFY_JOB), retry_policy=DEFAULT_RETRY_POLICY)
def fire_canvas_alerts(context: dg.OpExecutionContext, config: CanvasAlertsConfig, postgres: PostgresResource,
                       notifier: NotifierResource) -> dg.Output:
    guard_run(context, postgres)
    at = datetime.fromisoformat(config.trigger_at)
    fired, statuses = fire_alerts(postgres, notifier, at, {t.rule_id: t.value for t in config.triggers}) \
        if config.triggers else ([], [])
    resolved, resolved_statuses = resolve_alerts(postgres, notifier, at, {t.rule_id: t.value for t in config.resolved})
    summary = {status: statuses.count(status) for status in sorted(set(statuses))}
    context.log.info(f"canvas alerts at {config.trigger_at}: {len(fired)} of {len(config.triggers)} fired; {summary}; "
                     f"{len(resolved)} resolved")
    resolved_meta = {"resolved": len(resolved)} if config.resolved else {}
    return dg.Output(None, metadata={"requested": len(config.triggers), "fired": len(fired),
                                     "not_fired": len(config.triggers) - len(fired), **summary, **resolved_meta})


@dg.job(tags={"ops/kind": "notification"},
        description="Seed 000 alert checking: notifies canvas alert rules that crossed into breach, once each, "
                    "and sends 'resolved' when they clear.")
def canvas_alerts_job():
    fire_canvas_alerts()
