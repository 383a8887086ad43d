"""Which runs the asset catalog still needs: a run holding the latest event of an asset, a partition or a
check is never removed, whatever its age.

Why (read in Dagster 1.13's source, dagster/_core/storage/event_log/sql_event_log.py, and its PRs):
`DagsterInstance.delete_run` deletes the run row and every event_logs row of the run, materializations
included. The asset_keys row survives (dagster-io/dagster#15721: an asset stays in the catalog until
wiped), and asset_check_executions rows are left alone, but what the catalog shows is read from the events:
the latest materialization and observation of an asset, the materialized partitions (the partition status
cache is rebuilt from events, and #15721's review notes that it "falls out of sync on run deletion"), and
failed or in-progress partitions, which come from the latest planned and failed-to-materialize events and
forget a run that no longer exists (#21239). So a run whose event is the newest of its kind for its asset
and partition (or its check) is the catalog's, and stays; any older run can go without changing it.
"""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

# The events the catalog reads its state from, compared per asset and partition.
ASSET_EVENTS = (
    dg.DagsterEventType.ASSET_MATERIALIZATION,
    dg.DagsterEventType.ASSET_OBSERVATION,
    dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
    dg.DagsterEventType.ASSET_FAILED_TO_MATERIALIZE,
)
CHECK_EVENTS = (dg.DagsterEventType.ASSET_CHECK_EVALUATION, dg.DagsterEventType.ASSET_CHECK_EVALUATION_PLANNED)


def catalog_reason(instance: dg.DagsterInstance, run: dg.DagsterRun,
                   records: Sequence[dg.EventLogRecord]) -> str | None:
    """Why the catalog needs `run` ("latest ASSET_MATERIALIZATION of orders[2024-01-02]"), or None when
    removing it changes nothing the catalog shows. `records`: the run's events (get_records_for_run)."""
    for record in records:
        event = record.event_log_entry.dagster_event
        if event is None:
            continue
        if event.event_type in ASSET_EVENTS and event.asset_key is not None:
            if _is_latest(instance, run, record.storage_id, event):
                partition = f"[{event.partition}]" if event.partition else ""
                return f"latest {event.event_type_value} of {event.asset_key.to_user_string()}{partition}"
        elif event.event_type in CHECK_EVENTS:
            check_key = event.event_specific_data.asset_check_key
            latest = instance.get_latest_asset_check_evaluation_record(check_key)
            if latest is None or latest.run_id == run.run_id:
                return f"latest result of check {check_key.asset_key.to_user_string()}:{check_key.name}"
    return None


def _is_latest(instance: dg.DagsterInstance, run: dg.DagsterRun, storage_id: int, event: dg.DagsterEvent) -> bool:
    kind, key = event.event_type, event.asset_key
    if event.partition:
        latest = instance.get_latest_storage_id_by_partition(key, kind, {event.partition}).get(event.partition)
        return latest is None or latest <= storage_id
    if kind == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED and \
            getattr(event.event_specific_data, "partitions_subset", None) is not None:
        # One event planning a range of partitions (a single-run backfill): the range's failed or
        # in-progress partitions are this run's until it succeeded; a success is told by its materializations.
        return run.status != dg.DagsterRunStatus.SUCCESS
    if kind == dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED:
        planned = instance.get_latest_planned_materialization_info(key)
        return planned is None or planned.storage_id <= storage_id
    fetch = {dg.DagsterEventType.ASSET_MATERIALIZATION: instance.fetch_materializations,
             dg.DagsterEventType.ASSET_OBSERVATION: instance.fetch_observations,
             dg.DagsterEventType.ASSET_FAILED_TO_MATERIALIZE: instance.fetch_failed_materializations}[kind]
    return not fetch(dg.AssetRecordsFilter(asset_key=key, after_storage_id=storage_id), limit=1).records
