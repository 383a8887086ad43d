"""Every 30 s: new outbox events become runs of `events_job`, one per batch, each event handed over once.

Why (txid, id) and not the id alone: a bigserial id is taken when the row is inserted, not when it
commits, so id 7 can become visible after id 8 has been read; a cursor on ids would step over it.
Every event carries its writing transaction's id (`txid`, migration 0009). The sensor reads only
events whose transaction is below `pg_snapshot_xmin` of its own snapshot (every such transaction
has finished, so all its rows are visible now and no row can join them later), in (txid, id) order,
after the cursor `<txid>:<id>` of the last event it read. A late commit has a txid at or above that
bound, so it is read on a later tick. The cost: while any transaction is open, events written after
it wait (a long idle-in-transaction session delays delivery; see pg_stat_activity).

Exactly once: the cursor moves in the same SensorResult that requests the runs; run_keys are made
from the event ids and the retry window (framework/run_keys.py), so re-evaluating the same events asks
for the same runs; events that already have an `events_handled` row are never offered again (a lost or
reset cursor re-reads from the start but offers nothing handled), and the job skips any handled event
it is given. Events of other kinds are passed over by the cursor, with no run (campaign.status.changed has
its own sensor: sensors/campaigns.py).

Never lost: the cursor has moved past the events of a run that then ended without success (a failed
step, a killed worker, a cancel, Postgres gone). Each tick also reads the events_job runs that ended so
in the last REDO_LOOKBACK, and offers again their events that are still unhandled and held by no run
in flight, under their own key (`events_redo`, once per retry window): redone at the next tick, and
again each window while they keep failing. Every such failed run is also dead-lettered by the audit
once Dagster will not retry it.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import text

from ops_platform.framework.controls import NOTIFY_JOB
from ops_platform.framework.guard import tick_gate
from ops_platform.framework.run_keys import batches, run_key
from ops_platform.jobs.events import HANDLED_EVENTS, events_job
from ops_platform.resources.postgres import PostgresResource

EVENTS_PER_RUN = 100
RUNS_PER_TICK = 10
REDO_LOOKBACK = timedelta(days=7)  # longer than any kill switch is expected to stay on
_IN_FLIGHT = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED, dg.DagsterRunStatus.CANCELING]
_ENDED_WITHOUT_SUCCESS = [dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
_CURSOR = re.compile(r"(\d+):(\d+)")

NEW_EVENTS_SQL = text("""
SELECT e.txid::text AS txid, e.id, e.name
FROM events_outbox e
WHERE (e.txid, e.id) > (CAST(:txid AS xid8), :id)
  AND e.txid < pg_snapshot_xmin(pg_current_snapshot())
  AND NOT EXISTS (SELECT 1 FROM events_handled h WHERE h.event_id = e.id)
ORDER BY e.txid, e.id
LIMIT :limit
""")
UNHANDLED_SQL = text("""
SELECT e.id FROM events_outbox e
WHERE e.id = ANY(:ids) AND NOT EXISTS (SELECT 1 FROM events_handled h WHERE h.event_id = e.id)
ORDER BY e.txid, e.id
""")


def parse_cursor(cursor: str | None) -> tuple[str, int]:
    if not cursor:
        return "0", 0
    match = _CURSOR.fullmatch(cursor)
    if not match:
        raise ValueError(f"events_outbox_sensor cursor {cursor!r} is not '<txid>:<event id>'; clear it in the UI "
                         "(handled events are never offered twice, so a cleared cursor is safe)")
    return match[1], int(match[2])


def new_event_batches(postgres: PostgresResource, cursor: str | None,
                      per_run: int = EVENTS_PER_RUN, runs: int = RUNS_PER_TICK) -> tuple[list[list[int]], str | None]:
    """(batches of handled event ids in commit order, the new cursor or None when nothing was read)."""
    txid, last_id = parse_cursor(cursor)
    with postgres.begin() as conn:
        rows = conn.execute(NEW_EVENTS_SQL, {"txid": txid, "id": last_id, "limit": per_run * runs}).all()
    if not rows:
        return [], None
    ids = [r.id for r in rows if r.name in HANDLED_EVENTS]
    return [ids[i:i + per_run] for i in range(0, len(ids), per_run)], f"{rows[-1].txid}:{rows[-1].id}"


def run_event_ids(run: dg.DagsterRun) -> list[int]:
    return run.run_config.get("ops", {}).get("handle_events", {}).get("config", {}).get("event_ids", [])


def stranded_event_ids(instance: dg.DagsterInstance, postgres: PostgresResource, now: datetime) -> list[int]:
    """Unhandled events of events_job runs that ended without success, held by no run in flight."""
    ended = instance.get_runs(dg.RunsFilter(job_name=events_job.name, statuses=_ENDED_WITHOUT_SUCCESS,
                                            updated_after=now - REDO_LOOKBACK), limit=1000)
    candidates = {i for run in ended for i in run_event_ids(run)}
    if not candidates:
        return []
    in_flight = instance.get_runs(dg.RunsFilter(job_name=events_job.name, statuses=_IN_FLIGHT))
    candidates -= {i for run in in_flight for i in run_event_ids(run)}
    with postgres.begin() as conn:
        return list(conn.execute(UNHANDLED_SQL, {"ids": sorted(candidates)}).scalars())


def events_request(source: str, ids, now: datetime) -> dg.RunRequest:
    return dg.RunRequest(run_key=run_key(source, map(str, ids), now),
                         run_config={"ops": {"handle_events": {"config": {"event_ids": list(ids)}}}},
                         tags={"ops/events": str(len(ids))})


@dg.sensor(job=events_job, minimum_interval_seconds=30, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Events outbox: seed 001's webhook/send and email/send(-batch), seed 004's subscriptions; "
                       "each event handled once.")
def events_outbox_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
    skip = tick_gate(postgres, "events_outbox_sensor", NOTIFY_JOB)
    if skip:
        return dg.SensorResult(skip_reason=skip, cursor=context.cursor)
    now = datetime.now(UTC)
    new, cursor = new_event_batches(postgres, context.cursor)
    offered = {i for ids in new for i in ids}  # after a cursor reset, stranded events are read as new too
    stranded = [i for i in stranded_event_ids(context.instance, postgres, now) if i not in offered]
    redo = list(batches(stranded, EVENTS_PER_RUN))
    requests = [events_request("events", ids, now) for ids in new] + [
        events_request("events_redo", ids, now) for ids in redo]
    if not requests:
        reason = "no new events" if cursor is None else "no new events to handle (other kinds passed over)"
        return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=cursor or context.cursor)
    return dg.SensorResult(run_requests=requests, cursor=cursor or context.cursor)
