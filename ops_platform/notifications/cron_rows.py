"""Rows that fire on their own cron: find the due ones (sensor side), deliver each due time once (run side).

Both digests and scheduled notifications work the same way, so it is written once here:

- `scan` (sensor): rows without a next time get one; rows whose cron (malformed or never firing, e.g.
  '0 0 31 2 *'), time zone or config is wrong say why in `last_error` and are skipped, row by row, so
  one bad row never stops the tick; the rest with next time ≤ now are returned as due.
- `deliver_due` (run): a due time already recorded in the log table is not sent again; otherwise the
  message goes out under its dedup key, the due time is recorded (primary key: row, due time) and
  the row's next time moves to the first cron time after now, so a daemon that was down for days
  sends one message, not one per missed time.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from sqlalchemy import Connection, text

from ops_platform.framework.cron import next_after, validate
from ops_platform.framework.guard import tick_gate
from ops_platform.framework.run_keys import batches, run_key
from ops_platform.notifications import Notification, NotifierResource
from ops_platform.resources.postgres import PostgresResource
from ops_platform.settings import ConfigError

BATCH_SIZE = 50  # due rows per run


@dataclass(frozen=True)
class CronTable:
    """Where one kind of cron row lives. Names are constants of this module, never user input."""

    table: str
    next_col: str
    last_col: str
    log_table: str
    log_fk: str
    log_time: str


DIGESTS = CronTable("digests", "next_send_at", "last_sent_at", "digest_sends", "digest_id", "sent_at")
SCHEDULED = CronTable("scheduled_notifications", "next_fire_at", "last_fired_at", "scheduled_fires", "schedule_id",
                      "fired_at")


@dataclass(frozen=True)
class Due:
    id: int
    due_at: datetime

    @property
    def key(self) -> str:
        return f"{self.id}:{self.due_at.astimezone(UTC).isoformat()}"


RowCheck = Callable[[Mapping[str, Any]], object]  # raises ConfigError for a row it cannot serve


def scan(conn: Connection, t: CronTable, now: datetime,
         check: RowCheck | None = None) -> tuple[list[Due], dict[int, str]]:
    """(due rows, {row id: error}) for enabled rows that are due or have no next time yet."""
    rows = conn.execute(text(
        f"SELECT * FROM {t.table} WHERE enabled AND ({t.next_col} IS NULL OR {t.next_col} <= :now) ORDER BY id"
    ), {"now": now}).mappings().all()
    due, errors, first_times = [], {}, {}
    for row in rows:  # row by row: a bad cron, zone or config fails its own row only
        try:
            validate(row["cron"], row["timezone"])
            if check:
                check(row)
            if row[t.next_col] is None:
                first_times[row["id"]] = next_after(row["cron"], row["timezone"], now)
            else:
                due.append(Due(row["id"], row[t.next_col]))
        except ConfigError as err:
            errors[row["id"]] = str(err)
    if errors:
        conn.execute(text(
            f"UPDATE {t.table} AS t SET last_error = e.error"
            " FROM unnest(CAST(:ids AS bigint[]), CAST(:errors AS text[])) AS e(id, error)"
            " WHERE t.id = e.id AND t.last_error IS DISTINCT FROM e.error"
        ), {"ids": list(errors), "errors": list(errors.values())})
    if first_times:
        conn.execute(text(
            f"UPDATE {t.table} AS t SET {t.next_col} = f.at, last_error = NULL"
            " FROM unnest(CAST(:ids AS bigint[]), CAST(:ats AS timestamptz[])) AS f(id, at)"
            f" WHERE t.id = f.id AND t.{t.next_col} IS NULL"
        ), {"ids": list(first_times), "ats": list(first_times.values())})
    return due, errors


class DueItem(dg.Config):
    id: int
    due_at: str  # ISO 8601 with offset


class DueBatchConfig(dg.Config):
    items: list[DueItem]


def due_requests(source: str, op_name: str, due: Sequence[Due], at: datetime | None = None,
                 batch_size: int = BATCH_SIZE) -> list[dg.RunRequest]:
    """One run per batch, keyed by (row id, due time) pairs and the retry window (framework/run_keys.py)."""
    ordered = sorted(due, key=lambda d: (d.id, d.due_at))
    requests = []
    for batch in batches(ordered, batch_size):
        items = [{"id": d.id, "due_at": d.due_at.astimezone(UTC).isoformat()} for d in batch]
        requests.append(dg.RunRequest(
            run_key=run_key(source, (d.key for d in batch), at),
            run_config={"ops": {op_name: {"config": {"items": items}}}},
            tags={"ops/source": source, "ops/due_rows": str(len(batch))},
        ))
    return requests


MessageFor = Callable[[Connection, Mapping[str, Any], Due], Notification]


def deliver_due(postgres: PostgresResource, notifier: NotifierResource, t: CronTable, due: Due,
                message_for: MessageFor, run_id: str | None, now: datetime) -> str:
    """Deliver one due time of one row at most once; returns what happened, in a word."""
    with postgres.begin() as conn:
        row = conn.execute(text(f"SELECT * FROM {t.table} WHERE id = :id"), {"id": due.id}).mappings().first()
        if row is None:
            return "deleted"
        if _recorded(conn, t, due):
            _advance(conn, t, row, due, now, error=None)  # a run that stopped between recording and advancing
            return "already_sent"
        if not row["enabled"] or row[t.next_col] != due.due_at:
            return "no_longer_due"  # disabled, edited or advanced since the sensor saw it
        try:
            validate(row["cron"], row["timezone"])
            message = message_for(conn, row, due)
        except ConfigError as err:
            conn.execute(text(f"UPDATE {t.table} SET last_error = :e WHERE id = :id"), {"e": str(err), "id": due.id})
            return "invalid"
    notifier.send(message, at=now)  # "duplicate" when an earlier run sent it and stopped before recording
    with postgres.begin() as conn:
        notification = conn.execute(text("SELECT id, status, reason FROM notifications WHERE dedup_key = :k"),
                                    {"k": message.dedup_key}).one()
        inserted = conn.execute(text(
            f"INSERT INTO {t.log_table} ({t.log_fk}, due_at, run_id, notification_id, status)"
            f" VALUES (:id, :due, :run_id, :nid, :status) ON CONFLICT ({t.log_fk}, due_at) DO NOTHING"
        ), {"id": due.id, "due": due.due_at, "run_id": run_id, "nid": notification.id,
            "status": notification.status}).rowcount
        error = (f"notification {notification.id} {notification.status}: {notification.reason}"
                 if notification.status == "failed" else None)
        _advance(conn, t, row, due, now, error)
    return notification.status if inserted else "already_sent"


def _recorded(conn: Connection, t: CronTable, due: Due) -> bool:
    return conn.execute(text(f"SELECT 1 FROM {t.log_table} WHERE {t.log_fk} = :id AND due_at = :due"),
                        {"id": due.id, "due": due.due_at}).first() is not None


def _advance(conn: Connection, t: CronTable, row: Mapping[str, Any], due: Due, now: datetime,
             error: str | None) -> None:
    """last = due; next = the first cron time after now (missed times collapse into this one send)."""
    try:
        following = next_after(row["cron"], row["timezone"], max(now, due.due_at))
    except ConfigError as err:
        following, error = None, str(err)
    conn.execute(text(
        f"UPDATE {t.table} SET {t.last_col} = :due, {t.next_col} = :next, last_error = :error"
        f" WHERE id = :id AND {t.next_col} = :due"
    ), {"id": due.id, "due": due.due_at, "next": following, "error": error})


def parse_due(item: DueItem) -> Due:
    return Due(item.id, datetime.fromisoformat(item.due_at))


def deliver_batch(context: dg.OpExecutionContext, postgres: PostgresResource, notifier: NotifierResource,
                  t: CronTable, config: DueBatchConfig, message_for: MessageFor) -> dg.Output:
    """Every due time of the batch; one row's failure does not stop the others. The step fails at the
    end when any row failed, and its retry redoes only those (the others are recorded already)."""
    statuses: dict[str, str] = {}
    errors = []
    for item in config.items:
        due = parse_due(item)
        try:
            statuses[due.key] = deliver_due(postgres, notifier, t, due, message_for, context.run.run_id,
                                            datetime.now(UTC))
        except Exception as err:  # noqa: BLE001 - isolate rows; reported and retried below
            errors.append(f"{t.table} {due.id} due {item.due_at}: {type(err).__name__}: {err}")
    summary = {status: list(statuses.values()).count(status) for status in sorted(set(statuses.values()))}
    context.log.info(f"{t.table}: {summary}")
    if errors:
        raise dg.Failure(description="; ".join(errors)[:4000], metadata=summary | {"errors": len(errors)})
    return dg.Output(None, metadata=summary)


def due_sensor_result(context: dg.SensorEvaluationContext, postgres: PostgresResource, name: str, t: CronTable,
                      op_name: str, gates: tuple[str, ...], check: RowCheck | None = None,
                      now: datetime | None = None) -> dg.SensorResult:
    """The tick of a cron-rows sensor: gate, scan, one run request per batch of due rows."""
    skip = tick_gate(postgres, name, gates, at=now)
    if skip:
        return dg.SensorResult(skip_reason=skip)
    now = now or datetime.now(UTC)
    with postgres.begin() as conn:
        due, errors = scan(conn, t, now, check)
    for row_id, error in errors.items():
        context.log.warning(f"{t.table} {row_id} skipped: {error}")
    invalid = f"; {len(errors)} invalid rows skipped (see their last_error)" if errors else ""
    if not due:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"no {t.table} due{invalid}"))
    return dg.SensorResult(run_requests=due_requests(name, op_name, due, now))
