"""The audit trail of every run, written by run-status sensors rather than by each job.

A failed run that Dagster will not retry (op retries exhausted, or run retries used up) is also
dead-lettered, so exhausted work is listed in one table whatever job it was. Refusals by a control
and runs canceled by a person are decisions, not exhausted work: audited, never dead-lettered.

The audit keeps a run's final outcome, not an intermediate one. One run can be reported failed and
then successful (two daemons launched it twice: the duplicate worker failed it, the real worker
finished it; Dagster's record ends SUCCESS). So the failure and cancel sensors re-read the run from
the instance and write nothing unless it still has their status (an event read late, after the success,
is passed over), and the success sensor overrides a failure written before it and resolves that run's
dead letter. A success is final: the run did its work, whatever a duplicate worker reports after it.
"""

from __future__ import annotations

import dagster as dg

from ops_platform.framework.audit import record
from ops_platform.framework.dead_letters import dead_letter, resolve_dead_letter
from ops_platform.resources.postgres import PostgresResource

_SUMMARY_EVENTS = (dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.STEP_OUTPUT)


def run_summary(instance: dg.DagsterInstance, run_id: str) -> dict:
    """The metadata runs report (counts, cutoffs, windows), keyed by asset or step."""
    summary: dict[str, dict] = {}
    for event_type in _SUMMARY_EVENTS:
        for rec in instance.get_records_for_run(run_id, of_type=event_type).records:
            event = rec.event_log_entry.dagster_event
            if event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
                name, metadata = event.asset_key.to_user_string(), event.materialization.metadata
            else:
                name, metadata = event.step_key, event.step_output_data.metadata
            if metadata:
                summary[name] = {k: v.value for k, v in metadata.items()}
    return summary


def error_chain(error) -> str:
    """'Exceeded max_retries of 3' says little: follow the causes down to the original error."""
    messages = []
    while error is not None:
        messages.append(error.message.strip())
        error = error.cause
    return " <- ".join(messages)


def current_run(context: dg.RunStatusSensorContext, status: dg.DagsterRunStatus) -> dg.DagsterRun | None:
    """The run as the instance has it now, if it still has `status`; None when a later event superseded it."""
    run = context.instance.get_run_by_id(context.dagster_run.run_id)
    if run is None or run.status != status:
        context.log.info(f"run {context.dagster_run.run_id} is {run.status.value if run else 'gone'} now, "
                         f"not {status.value}: its final outcome is audited by its own sensor")
        return None
    return run


def record_outcome(context: dg.RunStatusSensorContext, postgres: PostgresResource, run: dg.DagsterRun,
                   success: bool, error: str | None = None, exhausted: bool = False) -> None:
    stats = context.instance.get_run_stats(run.run_id)
    duration_ms = int((stats.end_time - stats.start_time) * 1000) if stats.start_time and stats.end_time else None
    with postgres.begin() as conn:
        record(conn, action=run.job_name, action_type="run", run_id=run.run_id, success=success, error=error,
               duration_ms=duration_ms, output=run_summary(context.instance, run.run_id))
        if success:
            resolve_dead_letter(conn, f"run:{run.run_id}")  # written for a failure this success superseded
        elif exhausted and run.tags.get("dagster/will_retry") != "true":
            dead_letter(conn, source=run.job_name, dedup_key=f"run:{run.run_id}", error=error or "failed",
                        attempts=int(run.tags.get("dagster/retry_number", 0)) + 1,
                        payload={"run_id": run.run_id, "partition": run.tags.get("dagster/partition")})
