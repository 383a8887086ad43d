"""Every minute: evaluate all canvas alert rules at once and launch a few runs for the triggered ones.

A tick evaluates at the start of its minute, so ticks within one minute compute the same thing and
ask for the same runs: run_keys are made from the minute and the batch's rule ids, and Dagster
launches each once. A rule seen again by the next minute's tick before its run fired it is asked for
again under another key; that run finds it already in breach and does not fire it twice. The rules'
own columns (last_evaluated_at, last_triggered_at, breached, last_resolved_at) are the state, so no
cursor is kept. A rule that crossed into breach notifies once; it notifies again only after it
resolved (one "resolved" message) and crossed again.
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from ops_platform.canvas_alerts.evaluate import Evaluation, evaluate_rules
from ops_platform.framework.controls import NOTIFY_JOB
from ops_platform.framework.guard import tick_gate
from ops_platform.framework.run_keys import batches, run_key
from ops_platform.jobs.canvas_alerts import canvas_alerts_job
from ops_platform.resources.postgres import PostgresResource

BATCH_SIZE = 500  # triggered rules per run
SENSOR_NAME = "canvas_alerts_sensor"


def alert_requests(evaluation: Evaluation, batch_size: int = BATCH_SIZE) -> list[dg.RunRequest]:
    """One run per batch of crossings (triggered, then resolved rules), keyed by the minute and the batch."""
    at = evaluation.at
    crossings = [("fire", t) for t in evaluation.triggered] + [("resolve", t) for t in evaluation.resolved]
    requests = []
    for batch in batches(crossings, batch_size):
        requests.append(dg.RunRequest(
            run_key=run_key("canvas_alerts", (f"{kind}:{t.rule_id}" for kind, t in batch), at, window_seconds=60),
            run_config={"ops": {"fire_canvas_alerts": {"config": {
                "trigger_at": at.isoformat(),
                "triggers": [{"rule_id": t.rule_id, "value": t.value} for kind, t in batch if kind == "fire"],
                "resolved": [{"rule_id": t.rule_id, "value": t.value} for kind, t in batch if kind == "resolve"],
            }}}},
            tags={"ops/source": SENSOR_NAME, "ops/alerts": str(len(batch))},
        ))
    return requests


def alert_tick(postgres: PostgresResource, now: datetime, log=None) -> dg.SensorResult:
    """One tick at `now`: the gate, the evaluation at the start of now's minute, the run requests."""
    skip = tick_gate(postgres, SENSOR_NAME, NOTIFY_JOB, at=now)
    if skip:
        return dg.SensorResult(skip_reason=skip)
    at = now.astimezone(UTC).replace(second=0, microsecond=0)
    with postgres.begin() as conn:
        evaluation = evaluate_rules(conn, at)
    new = [(rule_id, error) for rule_id, error in evaluation.broken.items() if rule_id in evaluation.newly_broken]
    if new and log is not None:  # once per rule and error: later ticks count it in the summary only
        listed = "; ".join(f"rule {rule_id}: {error}" for rule_id, error in new[:20])
        log.warning(f"{len(new)} alert rules broke and are skipped until fixed (see alert_rules.last_error): {listed}")
    summary = (f"{evaluation.evaluated} rules evaluated at {at:%Y-%m-%d %H:%M} UTC, "
               f"{len(evaluation.triggered)} triggered, {len(evaluation.resolved)} resolved, "
               f"{len(evaluation.broken)} broken")
    if not evaluation.triggered and not evaluation.resolved:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"no alert rule triggered ({summary})"))
    if log is not None:
        log.info(summary)
    return dg.SensorResult(run_requests=alert_requests(evaluation))


@dg.sensor(job=canvas_alerts_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Seed 000 alert checking: every enabled canvas alert rule, set-wise, every minute.")
def canvas_alerts_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
    return alert_tick(postgres, datetime.now(UTC), context.log)
