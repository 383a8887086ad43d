"""The warehouse follows Postgres' schema (issue 9 §8), and the UI's partition state is true (§6)."""

from datetime import UTC, datetime

import dagster as dg
from helpers import sql

from ops_platform.assets.sync import WAREHOUSE_ASSETS
from ops_platform.demo.generate import generate
from ops_platform.notifications import NotifierResource
from ops_platform.sensors.sync import warehouse_backfill_sensor
from ops_platform.sync import engine
from ops_platform.sync.spec import SyncedTable

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BUILDS_ASSET, TASKS_ASSET = WAREHOUSE_ASSETS[0], WAREHOUSE_ASSETS[1]
BUILDS_KEY = dg.AssetKey(["warehouse", "builds"])


def run(postgres, wh, instance, assets=(BUILDS_ASSET,), mode="incremental", **kwargs):
    config = {"ops": {a.op.name: {"config": {"mode": mode}} for a in assets}}
    kwargs.setdefault("partition_key", "2026-11-20")
    return dg.materialize(list(assets), instance=instance, run_config=config, raise_on_error=False,
                          resources={"postgres": postgres, "warehouse": wh, "notifier": NotifierResource(postgres=postgres)},
                          **kwargs)


def columns(wh, table: str) -> dict:
    with wh.client() as ch:
        return dict(ch.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                             "AND table = {t:String}", parameters={"t": table}).result_rows)


def changes(postgres) -> list:
    return sql(postgres, "SELECT column_name, change, needs_backfill, backfilled_at IS NOT NULL "
                         "FROM sync_schema_changes ORDER BY id")


def test_an_added_column_is_added_and_filled_by_a_backfill_the_platform_asks_for(postgres, wh, instance):
    generate(postgres, scale=2_000, now=NOW)
    assert run(postgres, wh, instance).success
    sql(postgres, "ALTER TABLE builds ADD COLUMN region text NOT NULL DEFAULT 'eu'")
    sql(postgres, "UPDATE builds SET region = 'us' WHERE id = 3")

    first = run(postgres, wh, instance)
    assert first.success, "the sync goes on instead of stopping"
    assert columns(wh, "builds")["region"] == "String"
    assert first.asset_materializations_for_node("warehouse__builds")[-1].metadata["schema_changes"].value == \
        ["region: added, added as String"]
    assert changes(postgres) == [("region", "added", True, False)]
    assert sql(postgres, "SELECT output_data ->> 'schema_change' FROM audit_log WHERE action = 'warehouse/builds'") == \
        [("added",)]

    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as context:
        requests = warehouse_backfill_sensor(context).run_requests
    assert len(requests) == 1
    request = requests[0]
    assert request.asset_selection == [BUILDS_KEY]
    days = sql(postgres, "SELECT min((started_at AT TIME ZONE 'UTC')::date)::text, "
                         "max((started_at AT TIME ZONE 'UTC')::date)::text FROM builds")[0]
    assert (request.tags["dagster/asset_partition_range_start"], request.tags["dagster/asset_partition_range_end"]) == days
    backfill = dg.materialize([BUILDS_ASSET], instance=instance, run_config=request.run_config, tags=request.tags,
                              resources={"postgres": postgres, "warehouse": wh,
                                         "notifier": NotifierResource(postgres=postgres)})
    assert backfill.success
    with wh.client() as ch:
        regions = dict(ch.query("SELECT region, count() FROM builds FINAL GROUP BY region").result_rows)
    assert regions == dict(sql(postgres, "SELECT region, count(*) FROM builds GROUP BY region"))
    assert changes(postgres) == [("region", "added", True, True)]
    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as context:
        assert warehouse_backfill_sensor(context).run_requests == []


def test_a_dropped_column_is_kept_nullable_and_no_longer_filled(postgres, wh, instance):
    generate(postgres, scale=2_000, now=NOW)
    run(postgres, wh, instance)
    sql(postgres, "ALTER TABLE builds DROP COLUMN duration_ms")
    sql(postgres, "UPDATE builds SET status = 'failed' WHERE id = 4")
    assert run(postgres, wh, instance).success
    assert run(postgres, wh, instance).success  # recorded once
    assert columns(wh, "builds")["duration_ms"] == "Nullable(Int64)"
    with wh.client() as ch:
        assert ch.query("SELECT duration_ms FROM builds FINAL WHERE id = 4").result_rows == [(None,)]
    assert changes(postgres) == [("duration_ms", "retired", False, False)]


def test_widened_types_are_altered_in_place(postgres, wh):
    sql(postgres, "CREATE TABLE meters (id bigint PRIMARY KEY, n integer NOT NULL, amount numeric(10, 2) NOT NULL, "
                  "ratio real, created_at timestamptz NOT NULL DEFAULT '2026-11-01', updated_at timestamptz NOT NULL DEFAULT now())")
    meters = SyncedTable("meters", partition_column="created_at")
    sql(postgres, "INSERT INTO meters (id, n, amount) VALUES (1, 7, 12345678.91)")
    with wh.client() as ch:
        engine.incremental(engine.prepare(meters, postgres, ch), postgres, ch, wh.pull_postgres_url)
    sql(postgres, "ALTER TABLE meters ALTER COLUMN n TYPE bigint, ALTER COLUMN amount TYPE numeric(14, 4), "
                  "ALTER COLUMN amount DROP NOT NULL, ALTER COLUMN ratio TYPE double precision")
    sql(postgres, "INSERT INTO meters (id, n, amount, ratio) VALUES (2, 1099511627776, 1234567890.1234, 0.1)")
    with wh.client() as ch:
        engine.incremental(engine.prepare(meters, postgres, ch), postgres, ch, wh.pull_postgres_url)
        rows = ch.query("SELECT id, n, toString(amount), ratio FROM meters FINAL ORDER BY id").result_rows
    assert {k: v for k, v in columns(wh, "meters").items() if k in ("n", "amount", "ratio")} == \
        {"n": "Int64", "amount": "Nullable(Decimal(14, 4))", "ratio": "Nullable(Float64)"}
    assert rows == [(1, 7, "12345678.91", None), (2, 1099511627776, "1234567890.1234", 0.1)]
    assert sorted(c[:2] for c in changes(postgres)) == [("amount", "widened"), ("n", "widened"), ("ratio", "widened")]


def test_a_narrowed_column_stops_its_table_only_with_one_sentence(postgres, wh, instance):
    generate(postgres, scale=2_000, now=NOW)
    run(postgres, wh, instance, assets=(BUILDS_ASSET, TASKS_ASSET))
    sql(postgres, "ALTER TABLE builds ALTER COLUMN duration_ms TYPE integer")
    sql(postgres, "UPDATE tasks SET status = 'failed' WHERE id = 5")
    result = run(postgres, wh, instance, assets=(BUILDS_ASSET, TASKS_ASSET))
    failure = result.get_step_failure_events()[0]
    assert failure.step_key == "warehouse__builds"
    message = failure.step_failure_data.error.message
    assert "builds.duration_ms changed in Postgres from Nullable(Int64) to Nullable(Int32)" in message
    assert "the way out:" in message
    assert [e.step_key for e in result.get_step_success_events()] == ["warehouse__tasks"], "other tables go on"
    with wh.client() as ch:
        assert ch.query("SELECT status FROM tasks FINAL WHERE id = 5").result_rows == [("failed",)]
    assert columns(wh, "builds")["duration_ms"] == "Nullable(Int64)"  # nothing altered
    run(postgres, wh, instance)  # every 15 minutes it says the same, and the record holds it once
    assert changes(postgres) == [("duration_ms", "refused", False, False)]


def materialized_rows(instance, day: str) -> int:
    records = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=BUILDS_KEY, asset_partitions=[day]), limit=1).records
    return records[0].asset_materialization.metadata["rows"].value


def test_each_day_a_run_moved_is_a_materialized_partition_with_its_own_count(postgres, wh, instance):
    generate(postgres, scale=4_000, now=NOW)
    run(postgres, wh, instance)  # the first incremental run moves the whole table
    per_day = dict(sql(postgres, "SELECT (started_at AT TIME ZONE 'UTC')::date::text, count(*) FROM builds GROUP BY 1"))
    assert instance.get_materialized_partitions(BUILDS_KEY) == set(per_day) | {"2026-11-20"}
    for day, count in list(per_day.items())[:5]:
        assert materialized_rows(instance, day) == count

    sql(postgres, "UPDATE builds SET status = 'failed' WHERE id IN (SELECT id FROM builds "
                  "WHERE (started_at AT TIME ZONE 'UTC')::date = '2026-11-03' LIMIT 2)")
    later = run(postgres, wh, instance)
    days = [(m.partition, m.metadata["rows"].value) for m in later.asset_materializations_for_node("warehouse__builds")]
    assert sorted(days) == [("2026-11-03", 2), ("2026-11-20", 0)]

    backfill = run(postgres, wh, instance, mode="replace", partition_key=None,
                   tags={"dagster/asset_partition_range_start": "2026-11-02",
                         "dagster/asset_partition_range_end": "2026-11-04"})
    reported = {m.partition: m.metadata["rows"].value for m in backfill.asset_materializations_for_node("warehouse__builds")}
    assert reported == {d: per_day.get(d, 0) for d in ("2026-11-02", "2026-11-03", "2026-11-04")}
    assert len(set(reported.values())) > 1, "each day its own count, not the run's"


def test_the_sync_never_blocks_the_applications_migrations(postgres, wh, instance):
    """Nothing of ours depends on a synced table's columns: dropping or retyping one just works."""
    generate(postgres, scale=2_000, now=NOW)
    run(postgres, wh, instance)
    sql(postgres, "ALTER TABLE builds DROP COLUMN error, ALTER COLUMN cost_usd TYPE numeric(14, 2)")
    assert run(postgres, wh, instance).success


def backfill_as_the_sensor_asks(postgres, wh, instance):
    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as context:
        [request] = warehouse_backfill_sensor(context).run_requests
    return dg.materialize([BUILDS_ASSET], instance=instance, run_config=request.run_config, tags=request.tags,
                          resources={"postgres": postgres, "warehouse": wh, "notifier": NotifierResource(postgres=postgres)})


def test_a_column_dropped_and_added_again_does_not_keep_its_old_values(postgres, wh, instance):
    generate(postgres, scale=2_000, now=NOW)
    sql(postgres, "UPDATE builds SET error = 'old boom'")
    run(postgres, wh, instance)
    sql(postgres, "ALTER TABLE builds DROP COLUMN error")
    sql(postgres, "ALTER TABLE builds ADD COLUMN error text")  # same name, same type, no sync between
    assert run(postgres, wh, instance).success
    retired = [name for name in columns(wh, "builds") if name.startswith("error__retired_")]
    assert len(retired) == 1 and [c[:3] for c in changes(postgres)] == [("error", "retired", False),
                                                                      ("error", "added", True)]
    assert backfill_as_the_sensor_asks(postgres, wh, instance).success
    with wh.client() as ch:
        assert ch.query("SELECT count() FROM builds FINAL WHERE error IS NOT NULL").result_rows == [(0,)]
