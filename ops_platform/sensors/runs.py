"""Sensors on Dagster runs themselves: every outcome audited, dead workers failed, failure streaks alerted.

- audit_run_success / audit_run_failure / audit_run_canceled: one audit_log row per run outcome
  (runs/audit.py); a failed run's error chain is kept, and a dead letter for a run that exhausted its retries.
- dead_run_workers (every 30 s): a STARTED run whose worker process is gone is failed, so Dagster's
  run retries start it again and its concurrency slots are freed (runs/workers.py).
- job_failure_streaks: an incident when a job's last 3 finished runs failed, refusals aside
  (seed 003 "alert if 3+ consecutive failures"; runs/streaks.py).
- after_job_execution: seed 003 afterJobExecution, a retryable failure goes to the retry queue, which reruns
  the job; the error category decides (retry_queue/reruns.py), and with the job's failures in a row the
  severity of the run's one notice `job_failed:<run id>` (runs/failure_notices.py).
"""

from __future__ import annotations

from datetime import UTC, datetime

import dagster as dg

from ops_platform.framework.audit import record
from ops_platform.framework.error_categories import categorize
from ops_platform.framework.guard import REFUSED_BY
from ops_platform.jobs.notifications import notify_job, notify_requests
from ops_platform.monitoring.incidents import Incident, open_incidents, unrecorded, unsent_notifications
from ops_platform.notifications import Severity
from ops_platform.resources.postgres import PostgresResource
from ops_platform.retry_queue.reruns import enqueue_rerun, queue_owns
from ops_platform.runs.audit import current_run, error_chain, record_outcome
from ops_platform.runs.failure_notices import failure_notice
from ops_platform.runs.streaks import STREAK, failed_in_a_row, failure_streak
from ops_platform.runs.workers import fail_dead_run_workers


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.SUCCESS, name="audit_run_success",
                      default_status=dg.DefaultSensorStatus.RUNNING, description="Audits every successful run.")
def audit_run_success(context: dg.RunStatusSensorContext, postgres: PostgresResource) -> None:
    record_outcome(context, postgres, context.dagster_run, success=True)


@dg.run_failure_sensor(name="audit_run_failure", default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Audits every failed run and dead-letters the ones that will not be retried.")
def audit_run_failure(context: dg.RunFailureSensorContext, postgres: PostgresResource) -> None:
    run = current_run(context, dg.DagsterRunStatus.FAILURE)
    if run is None:
        return
    failures = [e.step_failure_data for e in context.get_step_failure_events()]
    step_errors = [error_chain(f.error) for f in failures if f.error]
    refused = any(f.user_failure_data and REFUSED_BY in f.user_failure_data.metadata for f in failures)
    message = "; ".join(step_errors) or (context.failure_event.message or "run failed")
    record_outcome(context, postgres, run, success=False, error=message[:4000], exhausted=not refused)


@dg.run_status_sensor(run_status=dg.DagsterRunStatus.CANCELED, name="audit_run_canceled",
                      default_status=dg.DefaultSensorStatus.RUNNING, description="Audits every canceled run.")
def audit_run_canceled(context: dg.RunStatusSensorContext, postgres: PostgresResource) -> None:
    run = current_run(context, dg.DagsterRunStatus.CANCELED)
    if run is not None:
        record_outcome(context, postgres, run, success=False, error="canceled")


@dg.sensor(name="dead_run_workers", minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Marks runs whose worker process died as failed, so they are retried and free their slots.")
def dead_run_workers(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    if not isinstance(context.instance.run_launcher, dg.DefaultRunLauncher):
        return dg.SkipReason("this run launcher checks its workers' health itself")
    failed = fail_dead_run_workers(context.instance)
    if failed:
        context.log.warning(f"marked {len(failed)} run(s) with a dead worker as failed: {', '.join(failed)}")
        return dg.SkipReason(f"{len(failed)} run(s) with a dead worker marked failed")
    return dg.SkipReason("every started run has a live worker")


@dg.run_failure_sensor(name="job_failure_streaks", request_job=notify_job,
                       default_status=dg.DefaultSensorStatus.RUNNING,
                       description="An incident (job_failing:<job>, once an hour) when a job's last 3 runs failed.")
def job_failure_streaks(context: dg.RunFailureSensorContext, postgres: PostgresResource) -> dg.SensorResult | None:
    if current_run(context, dg.DagsterRunStatus.FAILURE) is None:
        return None  # a later success superseded this failure (a duplicate run worker): no streak
    run = context.dagster_run
    streak = failure_streak(context.instance, run)
    if not streak:
        return None  # None lets the sensor go on to the next failed run in the same tick
    record = context.instance.get_run_record_by_id(run.run_id)
    ended = record.end_time if record and record.end_time else datetime.now(UTC).timestamp()
    at = datetime.fromtimestamp(ended, UTC)
    errors = [error_chain(e.step_failure_data.error) for e in context.get_step_failure_events()
              if e.step_failure_data.error]
    incident = Incident(
        "job_failing", run.job_name, Severity.WARN, f"Job failing: {run.job_name} failed {STREAK} times in a row",
        f"The last {STREAK} runs of {run.job_name} failed (runs {', '.join(streak)}). Latest error: "
        f"{('; '.join(errors) or context.failure_event.message or 'unknown')[:1000]}")
    with postgres.begin() as conn:
        open_incidents(conn, [incident], at)
        messages = unsent_notifications(conn, [incident], at)
    context.log.warning(f"{run.job_name}: {STREAK} consecutive failures; incident {incident.dedup_key(at)}")
    return dg.SensorResult(run_requests=notify_requests("job_failing", messages)) if messages else None


def _error_classes(error) -> list[str]:
    names = []
    while error is not None:
        names.append(error.cls_name or "")
        error = error.cause
    return names


@dg.run_failure_sensor(name="after_job_execution", request_job=notify_job,
                       default_status=dg.DefaultSensorStatus.RUNNING,
                       description="Seed 003 afterJobExecution: a failed run whose error is retryable goes to the "
                                   "retry queue (rerun with backoff); each failure notified once, its severity by "
                                   "category and failures in a row (auth: WARN at once; transient: WARN from the 3rd).")
def after_job_execution(context: dg.RunFailureSensorContext, postgres: PostgresResource) -> dg.SensorResult | None:
    run = current_run(context, dg.DagsterRunStatus.FAILURE)
    if run is None or queue_owns(run.tags) or run.job_name.startswith("__"):
        return None
    failures = [e.step_failure_data for e in context.get_step_failure_events()]
    classes = [name for f in failures for name in _error_classes(f.error)]
    message = "; ".join(error_chain(f.error) for f in failures if f.error) or (context.failure_event.message or "")
    metadata = {k: getattr(v, "value", v) for f in failures if f.user_failure_data
                for k, v in f.user_failure_data.metadata.items()}
    category = categorize(classes, message, metadata)
    in_a_row = len(failed_in_a_row(context.instance, run))
    notice = failure_notice(run.job_name, run.run_id, category, in_a_row, message)
    with postgres.begin() as conn:
        queued = enqueue_rerun(conn, run.job_name, run.run_id, category, run.run_config or {})
        record(conn, action=run.job_name, action_type="system", run_id=None, success=False, error=message[:1000],
               output={"after_job_execution": category, "run_id": run.run_id, "retry_job": queued,
                       "failures_in_a_row": in_a_row})
        messages = unrecorded(conn, [notice] if notice else [])
    return dg.SensorResult(run_requests=notify_requests("job_failed", messages)) if messages else None
