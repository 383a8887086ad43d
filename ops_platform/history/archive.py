"""Old Dagster runs and their event logs move to ClickHouse, then leave Dagster's storage.

Per run: archive (its events, then its run row), verify (ClickHouse holds exactly the events Dagster holds
now, and the run row), then remove (DagsterInstance.delete_run). A pass that dies anywhere leaves each run
in Dagster, in the archive, or in both; the next pass inserts only what the archive lacks, so nothing is
written twice, and removes what it verified. A run the asset catalog still needs is never removed
(catalog.py); it is counted in `kept` with the reason.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from datetime import UTC, datetime

import dagster as dg
from clickhouse_connect.driver.client import Client

from ops_platform.history.catalog import catalog_reason
from ops_platform.maintenance.archive import ArchiveMismatch

ARCHIVED_EVENT_IDS_SQL = "SELECT storage_id FROM dagster_events_archive WHERE run_id = {run:String}"
ARCHIVED_RUN_SQL = "SELECT count() FROM dagster_runs_archive WHERE run_id = {run:String}"
ARCHIVED_TOTALS_SQL = """
SELECT uniqExact(storage_id), sum(storage_id) FROM dagster_events_archive WHERE run_id = {run:String}
"""
RUN_COLUMNS = ["run_id", "job_name", "status", "created_at", "started_at", "ended_at", "tags", "events", "run"]
EVENT_COLUMNS = ["run_id", "storage_id", "ts", "event_type", "step_key", "asset_key", "partition", "level",
                 "message", "event"]
FINISHED = [dg.DagsterRunStatus.SUCCESS, dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED]
PAGE = 1000  # runs, or events of a run, read per round trip


@dataclass
class HistoryResult:
    removed: list[str] = field(default_factory=list)      # run ids archived and removed
    kept: dict[str, str] = field(default_factory=dict)    # run id -> why the catalog needs it
    events: int = 0                                       # events of the removed runs

    def metadata(self) -> dict:
        return {"runs_removed": len(self.removed), "events_removed": self.events, "runs_kept": len(self.kept),
                "kept_because": dict(list(self.kept.items())[:20])}


def bound_history(instance: dg.DagsterInstance, ch: Client, cutoff: datetime) -> HistoryResult:
    """Archive, verify and remove every finished run last updated before `cutoff` (aware datetime) that
    the catalog does not need. Raises ArchiveMismatch (that run stays; earlier ones are done)."""
    result = HistoryResult()
    cursor = None  # the newest run kept so far: removed runs are gone from the next page by themselves
    while True:
        page = instance.get_run_records(dg.RunsFilter(statuses=FINISHED, updated_before=cutoff), limit=PAGE,
                                        ascending=True, cursor=cursor)
        for record in page:
            run = record.dagster_run
            events = run_events(instance, run.run_id)
            reason = catalog_reason(instance, run, events)
            if reason:
                result.kept[run.run_id] = reason
                cursor = run.run_id
                continue
            archive_events(ch, run.run_id, events)
            archive_run(ch, record, len(events))
            verify(ch, run.run_id, run_events(instance, run.run_id))
            instance.delete_run(run.run_id)
            result.removed.append(run.run_id)
            result.events += len(events)
        if len(page) < PAGE:
            return result


def run_events(instance: dg.DagsterInstance, run_id: str) -> list[dg.EventLogRecord]:
    records, cursor = [], None
    while True:
        page = instance.get_records_for_run(run_id, cursor=cursor, limit=PAGE)
        records.extend(page.records)
        if not page.has_more:
            return records
        cursor = page.cursor


def archive_events(ch: Client, run_id: str, records: list[dg.EventLogRecord]) -> int:
    """Insert the events the archive does not hold yet; return how many were inserted."""
    held = {row[0] for row in ch.query(ARCHIVED_EVENT_IDS_SQL, parameters={"run": run_id}).result_rows}
    rows = [_event_row(run_id, r) for r in records if r.storage_id not in held]
    if rows:
        ch.insert("dagster_events_archive", rows, column_names=EVENT_COLUMNS)
    return len(rows)


def archive_run(ch: Client, record: dg.RunRecord, events: int) -> None:
    """Insert the run row once; written after its events, it marks the run archived."""
    run = record.dagster_run
    if ch.query(ARCHIVED_RUN_SQL, parameters={"run": run.run_id}).result_rows[0][0]:
        return
    ch.insert("dagster_runs_archive", [[
        run.run_id, run.job_name, run.status.value, record.create_timestamp.astimezone(UTC),
        _time(record.start_time), _time(record.end_time), json.dumps(dict(run.tags), sort_keys=True), events,
        dg.serialize_value(run)]], column_names=RUN_COLUMNS)


def verify(ch: Client, run_id: str, records: list[dg.EventLogRecord]) -> None:
    """Raise ArchiveMismatch unless the archive holds the run row and exactly these events."""
    held, id_sum = ch.query(ARCHIVED_TOTALS_SQL, parameters={"run": run_id}).result_rows[0]
    expected = (len(records), sum(r.storage_id for r in records))
    has_run = ch.query(ARCHIVED_RUN_SQL, parameters={"run": run_id}).result_rows[0][0]
    if (int(held), int(id_sum or 0)) != expected or not has_run:
        raise ArchiveMismatch(f"run {run_id}: the archive holds {held} of its {expected[0]} events"
                              f"{'' if has_run else ' and no run row'}; the run was not removed")


def _event_row(run_id: str, record: dg.EventLogRecord) -> list:
    entry = record.event_log_entry
    event = entry.dagster_event
    level = logging.getLevelName(entry.level) if isinstance(entry.level, int) else str(entry.level)
    return [run_id, record.storage_id, datetime.fromtimestamp(entry.timestamp, UTC),
            event.event_type_value if event else "LOG", entry.step_key or "",
            event.asset_key.to_user_string() if event and event.asset_key else "",
            (event.partition if event else None) or "", level, entry.user_message or "", dg.serialize_value(entry)]


def _time(timestamp: float | None) -> datetime | None:
    return datetime.fromtimestamp(timestamp, UTC) if timestamp is not None else None
