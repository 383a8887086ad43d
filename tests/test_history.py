"""Dagster's own history bounded (issue 13): old runs archived to ClickHouse, verified, then removed, with
what the asset catalog shows unchanged."""

import itertools
import os
from datetime import UTC, datetime, timedelta
from pathlib import Path

import dagster as dg
import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ops_platform.history.archive import (
    ArchiveMismatch,
    archive_events,
    archive_run,
    bound_history,
    run_events,
)

ROOT = Path(__file__).parent.parent
DAYS = dg.DailyPartitionsDefinition(start_date="2024-01-01", end_date="2024-01-06")
_ids = itertools.count(1)


class Outcome(dg.Config):
    fail: bool = False
    passed: bool = True


@dg.asset(check_specs=[dg.AssetCheckSpec("positive", asset="scores")])
def scores(config: Outcome) -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"passed": config.passed},
                                check_results=[dg.AssetCheckResult(passed=config.passed)])


@dg.asset(partitions_def=DAYS)
def daily(context: dg.AssetExecutionContext, config: Outcome) -> dg.MaterializeResult:
    if config.fail:
        raise RuntimeError(f"{context.partition_key} failed on purpose")
    return dg.MaterializeResult(metadata={"day": context.partition_key})


@dg.op
def noise() -> None:
    dg.get_dagster_logger().info("a line of log")


@dg.job
def noise_job():
    noise()


@pytest.fixture
def dagster(pg_server, monkeypatch):
    """A Dagster instance on its own Postgres database, configured by the project's dagster.yaml."""
    monkeypatch.setenv("DAGSTER_PG_URL", pg_server.create(f"dagster_history_{os.getpid()}_{next(_ids)}"))
    overrides = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    with dg.instance_for_test(overrides=overrides) as instance:
        yield instance


def materialize_scores(instance, passed=True) -> str:
    return dg.materialize([scores], instance=instance,
                          run_config={"ops": {"scores": {"config": {"passed": passed}}}}).run_id


def materialize_day(instance, day: str, fail=False) -> str:
    result = dg.materialize([daily], instance=instance, partition_key=day, raise_on_error=False,
                            run_config={"ops": {"daily": {"config": {"fail": fail}}}})
    assert result.success is not fail
    return result.run_id


def catalog(instance) -> dict:
    """What the asset catalog shows, read through the instance's public API."""
    check = instance.get_latest_asset_check_evaluation_record(dg.AssetCheckKey(dg.AssetKey("scores"), "positive"))
    state = {
        "check": check and (check.run_id, check.status, check.event.dagster_event.event_specific_data.passed),
        "daily_status": instance.get_status_by_partition(dg.AssetKey("daily"), DAYS.get_partition_keys(), DAYS),
        "daily_materialized": instance.get_materialized_partitions(dg.AssetKey("daily")),
    }
    for key in (dg.AssetKey("scores"), dg.AssetKey("daily")):
        latest = instance.get_latest_materialization_event(key)
        record = instance.get_asset_records([key])
        state[key.to_user_string()] = (
            latest and (latest.run_id, latest.timestamp, latest.asset_materialization.metadata),
            record and record[0].asset_entry.last_run_id,
        )
        for kind in (dg.DagsterEventType.ASSET_MATERIALIZATION, dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED,
                     dg.DagsterEventType.ASSET_FAILED_TO_MATERIALIZE):
            state[(key.to_user_string(), kind.value)] = dict(instance.get_latest_storage_id_by_partition(key, kind))
    return state


def archived(warehouse, table: str, column: str = "run_id") -> list:
    with warehouse.client() as ch:
        return [r[0] for r in ch.query(f"SELECT {column} FROM {table} ORDER BY {column}").result_rows]


def later() -> datetime:
    return datetime.now(UTC) + timedelta(seconds=1)


def history(instance, warehouse, cutoff=None):
    with warehouse.client() as ch:
        return bound_history(instance, ch, cutoff or later())


def test_old_runs_are_archived_and_removed_and_the_catalog_shows_the_same(dagster, warehouse):
    replaced_scores = materialize_scores(dagster, passed=False)
    latest_scores = materialize_scores(dagster)
    replaced_day = materialize_day(dagster, "2024-01-01")
    latest_day = materialize_day(dagster, "2024-01-01")
    other_day = materialize_day(dagster, "2024-01-02")
    failed_day = materialize_day(dagster, "2024-01-03", fail=True)
    noise_runs = [noise_job.execute_in_process(instance=dagster).run_id for _ in range(2)]
    events = {run_id: [r.event_log_entry for r in run_events(dagster, run_id)]
              for run_id in [replaced_scores, replaced_day, *noise_runs]}
    before = catalog(dagster)
    assert before["daily_status"]["2024-01-03"] == dg.AssetPartitionStatus.FAILED

    result = history(dagster, warehouse)

    removed = {replaced_scores, replaced_day, *noise_runs}
    assert set(result.removed) == removed, result.kept
    assert set(result.kept) == {latest_scores, latest_day, other_day, failed_day}
    assert result.kept[failed_day].endswith("of daily[2024-01-03]")
    assert catalog(dagster) == before
    assert {r.run_id for r in dagster.get_runs()} == {latest_scores, latest_day, other_day, failed_day}
    for run_id in removed:
        assert dagster.get_records_for_run(run_id).records == []
    assert archived(warehouse, "dagster_runs_archive") == sorted(removed)
    with warehouse.client() as ch:
        for run_id, entries in events.items():
            rows = ch.query("SELECT event FROM dagster_events_archive WHERE run_id = {r:String} ORDER BY storage_id",
                            parameters={"r": run_id}).result_rows
            assert [dg.deserialize_value(r[0], dg.EventLogEntry) for r in rows] == entries
        stored = ch.query("SELECT run FROM dagster_runs_archive WHERE run_id = {r:String}",
                          parameters={"r": replaced_scores}).result_rows[0][0]
    assert dg.deserialize_value(stored, dg.DagsterRun).job_name == "__ephemeral_asset_job__"

    again = history(dagster, warehouse)  # nothing left to remove; the catalog's runs stay
    assert again.removed == [] and set(again.kept) == set(result.kept)
    assert catalog(dagster) == before


def test_runs_newer_than_the_cutoff_stay(dagster, warehouse):
    old = noise_job.execute_in_process(instance=dagster).run_id
    cutoff = datetime.now(UTC)
    new = noise_job.execute_in_process(instance=dagster).run_id
    result = history(dagster, warehouse, cutoff=cutoff)
    assert result.removed == [old]
    assert dagster.get_run_by_id(new) is not None and dagster.get_run_by_id(old) is None


def test_a_crash_between_archive_and_removal_loses_nothing_and_doubles_nothing(dagster, warehouse):
    runs = [noise_job.execute_in_process(instance=dagster).run_id for _ in range(3)]
    records = {r.dagster_run.run_id: r for r in dagster.get_run_records()}
    counts = {run_id: len(run_events(dagster, run_id)) for run_id in runs}
    with warehouse.client() as ch:
        # The first pass died after archiving every run and removing none ...
        for run_id in runs:
            archive_events(ch, run_id, run_events(dagster, run_id))
            archive_run(ch, records[run_id], counts[run_id])
    assert all(dagster.get_run_by_id(run_id) for run_id in runs)

    result = history(dagster, warehouse)  # ... and the next pass finishes the job

    assert sorted(result.removed) == sorted(runs)
    assert archived(warehouse, "dagster_runs_archive") == sorted(runs)  # one row each, no duplicate
    ids = archived(warehouse, "dagster_events_archive", "storage_id")
    assert len(ids) == len(set(ids)) == sum(counts.values())


def test_a_crash_half_way_through_a_runs_events_is_completed_on_the_next_pass(dagster, warehouse):
    run_id = noise_job.execute_in_process(instance=dagster).run_id
    events = run_events(dagster, run_id)
    with warehouse.client() as ch:
        archive_events(ch, run_id, events[: len(events) // 2])  # died mid-archive: no run row yet
    result = history(dagster, warehouse)
    assert result.removed == [run_id]
    ids = archived(warehouse, "dagster_events_archive", "storage_id")
    assert ids == sorted(r.storage_id for r in events)


def test_a_run_whose_archive_disagrees_is_not_removed(dagster, warehouse):
    run_id = noise_job.execute_in_process(instance=dagster).run_id
    events = run_events(dagster, run_id)
    with warehouse.client() as ch:
        archive_events(ch, run_id, events)
        ch.command("INSERT INTO dagster_events_archive (run_id, storage_id, event_type, event) "
                   "VALUES ({r:String}, 999999999, 'LOG', '')", parameters={"r": run_id})
        with pytest.raises(ArchiveMismatch, match=f"run {run_id}: the archive holds {len(events) + 1} of its "
                                                  f"{len(events)} events"):
            bound_history(dagster, ch, later())
    assert dagster.get_run_by_id(run_id) is not None
    assert len(run_events(dagster, run_id)) == len(events)


DAY_KEYS = DAYS.get_partition_keys()[:3]


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.lists(st.tuples(st.sampled_from(DAY_KEYS), st.booleans()), min_size=1, max_size=5))
def test_any_history_of_partition_runs_leaves_the_catalog_as_it_was(pg_server, warehouse, history_of_runs):
    """Whatever sequence of partition runs succeeded or failed, removing the old ones changes nothing shown."""
    url = pg_server.create(f"dagster_history_{os.getpid()}_{next(_ids)}")
    overrides = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    overrides["storage"] = {"postgres": {"postgres_url": url}}
    with dg.instance_for_test(overrides=overrides) as instance:
        runs = [materialize_day(instance, day, fail) for day, fail in history_of_runs]
        before = catalog(instance)
        result = history(instance, warehouse)
        assert catalog(instance) == before
        assert sorted([*result.removed, *result.kept]) == sorted(runs)
        newest = {day: run for (day, _), run in zip(history_of_runs, runs, strict=True)}
        assert set(newest.values()) <= set(result.kept)


def test_tick_retention_is_read_and_validated_by_dagster(dagster):
    retention = dagster.get_settings("retention")
    for kind in ("schedule", "sensor"):
        assert retention[kind]["purge_after_days"] == {"skipped": 7, "success": 30, "failure": 90}
    overrides = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    overrides["retention"]["sensor"]["purge_after_days"]["succeeded"] = 30  # not a tick status
    with pytest.raises(dg.DagsterInvalidConfigError, match="succeeded"):
        with dg.instance_for_test(overrides=overrides):
            pass


def test_the_daily_job_keeps_runs_younger_than_its_age(dagster, postgres, warehouse):
    from ops_platform.jobs.history import dagster_history_job

    young = noise_job.execute_in_process(instance=dagster).run_id
    result = dagster_history_job.execute_in_process(
        instance=dagster, resources={"postgres": postgres, "warehouse": warehouse},
        run_config={"ops": {"archive_dagster_history": {"config": {"max_age_days": 1}}}})
    assert result.success
    output = next(e for e in result.all_node_events if e.is_successful_output)
    assert output.step_output_data.metadata["runs_removed"].value == 0
    assert dagster.get_run_by_id(young) is not None
