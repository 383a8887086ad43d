"""Seed 003 "alert if 3+ consecutive failures": a job whose last 3 finished runs failed gets an incident.

On each failed run the sensor looks back through that job's finished runs in the Dagster instance
(the failed run and the ones before it). A success ends the streak. Runs a control refused and
canceled runs are decisions, not failures: they neither count nor break the streak. The incident
`job_failing:<job>` is opened once per hour (the hour the run ended), and its notification goes
through the policy layer. A failure that a later success superseded (a duplicate run worker failed a
run that then finished) is no failure: the sensor reads the run's current status first, and the streak
counts Dagster's final statuses.
"""

from __future__ import annotations

import dagster as dg

from ops_platform.framework.guard import REFUSED_BY

STREAK = 3
LOOKBACK = 20  # finished runs read per failure: enough to see past a few refusals
_FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE]


def was_refused(instance: dg.DagsterInstance, run_id: str) -> bool:
    """Did a control (kill switch, jobs off, ...) refuse this run in its first step?"""
    for rec in instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.STEP_FAILURE).records:
        failure = rec.event_log_entry.dagster_event.step_failure_data
        if failure.user_failure_data and REFUSED_BY in failure.user_failure_data.metadata:
            return True
    return False


def failed_in_a_row(instance: dg.DagsterInstance, run: dg.DagsterRun, up_to: int = LOOKBACK) -> list[str]:
    """The ids of the failed runs of run's job in a row ending with `run` (newest first, at most `up_to`);
    [] when `run` was refused. Refused runs are skipped, a success ends the row."""
    if was_refused(instance, run.run_id):
        return []
    row = [run.run_id]
    older = instance.get_run_records(filters=dg.RunsFilter(job_name=run.job_name, statuses=_FINISHED),
                                     limit=LOOKBACK, cursor=run.run_id)
    for record in older:
        if len(row) >= up_to or record.dagster_run.status == dg.DagsterRunStatus.SUCCESS:
            break
        if not was_refused(instance, record.dagster_run.run_id):
            row.append(record.dagster_run.run_id)
    return row


def failure_streak(instance: dg.DagsterInstance, run: dg.DagsterRun, length: int = STREAK) -> list[str]:
    """The ids of `length` consecutive failed runs of run's job ending with `run`; [] if there are fewer."""
    streak = failed_in_a_row(instance, run, up_to=length)
    return streak if len(streak) == length else []
