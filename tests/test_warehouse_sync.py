"""Postgres → ClickHouse: parity, idempotency, updates, exact partition backfills, crash recovery, late commits."""

from datetime import UTC, datetime

import dagster as dg
import pytest
from helpers import sql
from sqlalchemy import text

from ops_platform.assets.sync import WAREHOUSE_ASSETS, parity_postgres, parity_warehouse
from ops_platform.demo.generate import generate
from ops_platform.notifications import NotifierResource
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WarehouseResource
from ops_platform.sync import engine
from ops_platform.sync.spec import BUILDS, SyncedTable
from ops_platform.sync.types import UnsupportedType, postgres_columns

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
BUILDS_ASSET = WAREHOUSE_ASSETS[0]
INCREMENTAL = {"ops": {"warehouse__builds": {"config": {"mode": "incremental"}}}}


@pytest.fixture(params=["client", "server"])
def warehouse(request, warehouse, database_url):
    """Every sync test runs both paths: the platform streaming rows, and ClickHouse pulling them itself."""
    return WarehouseResource(url=warehouse.url, database=warehouse.database,
                             pull_postgres_url=database_url if request.param == "server" else None)


def sync(postgres, warehouse, instance, asset=BUILDS_ASSET, **kwargs):
    return dg.materialize([asset], instance=instance, resources={
        "postgres": postgres, "warehouse": warehouse, "notifier": NotifierResource(postgres=postgres)}, **kwargs)


def incremental(postgres, warehouse, instance):
    return sync(postgres, warehouse, instance, partition_key="2026-11-20", run_config=INCREMENTAL)


def raw_count(warehouse) -> int:
    """Rows as inserted (duplicates included): merges are stopped so only the sync can change this."""
    with warehouse.client() as ch:
        return ch.query("SELECT count() FROM builds").result_rows[0][0]


@pytest.fixture(autouse=True)
def no_background_merges(warehouse):
    with warehouse.client() as ch:
        ch.command("SYSTEM STOP MERGES")


def test_incremental_parity_and_a_second_run_adds_nothing(postgres, warehouse, instance):
    generate(postgres, scale=4_000, now=NOW)
    result = incremental(postgres, warehouse, instance)
    assert result.asset_materializations_for_node("warehouse__builds")[-1].metadata["run_rows"].value == 200
    assert parity_postgres(BUILDS, postgres) == parity_warehouse(BUILDS, warehouse)
    assert raw_count(warehouse) == 200

    again = incremental(postgres, warehouse, instance)
    assert again.asset_materializations_for_node("warehouse__builds")[-1].metadata["run_rows"].value == 0
    assert raw_count(warehouse) == 200


def test_types_arrive_byte_for_byte(postgres, warehouse, instance):
    sql(postgres, """INSERT INTO builds (prd_name, status, started_at, cost_usd, meta, error)
                     VALUES (E'tab\\there "quoted" \\\\ back', 'failed', '2026-11-19 23:59:59.123456+00', 1234567890.12,
                             '{"b": [1, 2], "a": "x\\"y", "ü": null}', NULL)""")
    incremental(postgres, warehouse, instance)
    pg_row = sql(postgres, "SELECT prd_name, started_at, cost_usd, meta::text, error FROM builds")[0]
    with warehouse.client() as ch:
        ch_row = ch.query("SELECT prd_name, started_at, cost_usd, meta, error FROM builds FINAL").result_rows[0]
    assert ch_row[0] == pg_row.prd_name and ch_row[2] == pg_row.cost_usd and ch_row[3] == pg_row.meta
    assert ch_row[4] is None
    assert ch_row[1].replace(tzinfo=UTC) == pg_row.started_at  # no time-zone shift


def test_an_updated_row_appears_once_with_its_new_values(postgres, warehouse, instance):
    generate(postgres, scale=2_000, now=NOW)
    incremental(postgres, warehouse, instance)
    sql(postgres, "UPDATE builds SET status = 'failed', error = 'late failure' WHERE id = 7")
    incremental(postgres, warehouse, instance)
    with warehouse.client() as ch:
        rows = ch.query("SELECT status, error FROM builds FINAL WHERE id = 7").result_rows
        assert ch.query("SELECT count() FROM builds FINAL").result_rows[0][0] == 100
    assert rows == [("failed", "late failure")]
    assert raw_count(warehouse) == 101  # only the changed row moved
    assert parity_postgres(BUILDS, postgres) == parity_warehouse(BUILDS, warehouse)


def test_backfill_of_three_days_replaces_exactly_those_partitions(postgres, warehouse, instance):
    generate(postgres, scale=20_000, now=NOW)
    incremental(postgres, warehouse, instance)
    with warehouse.client() as ch:
        # Damage the warehouse: a stray row inside the range, one outside it, and a lost row inside.
        ch.command("INSERT INTO builds (id, prd_name, status, started_at, meta, updated_at, _version) VALUES "
                   "(-1, 'stray-in', 'x', '2026-11-02 10:00:00', '{}', now(), 1),"
                   "(-2, 'stray-out', 'x', '2026-11-05 10:00:00', '{}', now(), 1)")
        lost = ch.query("SELECT id FROM builds WHERE toDate(started_at) = '2026-11-03' LIMIT 1").result_rows[0][0]
        ch.command(f"DELETE FROM builds WHERE id = {lost}")

    result = sync(postgres, warehouse, instance, tags={"dagster/asset_partition_range_start": "2026-11-02",
                                                       "dagster/asset_partition_range_end": "2026-11-04"})
    metadata = result.asset_materializations_for_node("warehouse__builds")[0].metadata
    assert metadata["mode"].value == "replace"
    assert len(result.asset_materializations_for_node("warehouse__builds")) == 3  # one run, three partitions

    with warehouse.client() as ch:
        ids = {r[0] for r in ch.query("SELECT id FROM builds FINAL").result_rows}
        per_day = dict(ch.query("SELECT toString(toDate(started_at)), count() FROM builds FINAL "
                                "WHERE toDate(started_at) BETWEEN '2026-11-02' AND '2026-11-04' GROUP BY 1").result_rows)
    assert -1 not in ids and lost in ids, "the range is an exact copy again"
    assert -2 in ids, "a day outside the range is untouched"
    expected = dict(sql(postgres, "SELECT (started_at AT TIME ZONE 'UTC')::date::text, count(*) FROM builds "
                                  "WHERE started_at >= '2026-11-02' AND started_at < '2026-11-05' GROUP BY 1"))
    assert per_day == expected


def test_a_table_made_by_the_first_release_is_upgraded_in_place(postgres, warehouse, instance):
    """Daily ClickHouse partitions and a `_version` ClickHouse did not compute: both still sync exactly."""
    generate(postgres, scale=4_000, now=NOW)
    first_release_table(postgres, warehouse)
    incremental(postgres, warehouse, instance)
    sql(postgres, "UPDATE builds SET status = 'failed' WHERE id = 7")
    sync(postgres, warehouse, instance, partition_key="2026-11-03")
    incremental(postgres, warehouse, instance)

    assert parity_postgres(BUILDS, postgres) == parity_warehouse(BUILDS, warehouse)
    with warehouse.client() as ch:
        assert ch.query("SELECT min(_version) FROM builds").result_rows[0][0] > 0
        assert ch.query("SELECT status FROM builds FINAL WHERE id = 7").result_rows == [("failed",)]
        assert ch.query("SELECT partition_key FROM system.tables WHERE name = 'builds' "
                        "AND database = currentDatabase()").result_rows[0][0] == "toYYYYMMDD(started_at)"


def test_a_staging_table_left_by_a_killed_replace_is_dropped_by_the_next_sync(postgres, warehouse, instance):
    generate(postgres, scale=2_000, now=NOW)
    incremental(postgres, warehouse, instance)
    with warehouse.client() as ch:
        ch.command("CREATE TABLE builds__staging_0123456789ab AS builds")
        ch.command("INSERT INTO builds__staging_0123456789ab SELECT * FROM builds")
    incremental(postgres, warehouse, instance)
    with warehouse.client() as ch:
        left = ch.query("SELECT name FROM system.tables WHERE database = currentDatabase() "
                        "AND name LIKE '%staging%'").result_rows
    assert left == []
    assert parity_postgres(BUILDS, postgres) == parity_warehouse(BUILDS, warehouse)


def test_a_run_that_died_after_inserting_is_repaired_by_the_next(postgres, warehouse, instance):
    generate(postgres, scale=2_000, now=NOW)
    with warehouse.client() as ch:
        engine.incremental(engine.prepare(BUILDS, postgres, ch), postgres, ch)
    window_end = sql(postgres, "SELECT watermark FROM sync_state")[0][0]
    # The state a run leaves when it dies between the ClickHouse insert and the watermark update:
    sql(postgres, "UPDATE sync_state SET watermark = NULL, pending_upper = :u", u=window_end)

    incremental(postgres, warehouse, instance)
    if not warehouse.pull_postgres_url:  # the client stream repeats identical blocks, which ClickHouse drops
        assert raw_count(warehouse) == 100, "the repeated window was deduplicated"
    assert parity_postgres(BUILDS, postgres) == parity_warehouse(BUILDS, warehouse)  # FINAL: exact on both paths
    assert sql(postgres, "SELECT pending_upper IS NULL, watermark >= :u FROM sync_state", u=window_end)[0] == (True, True)


def test_a_transaction_still_open_is_not_skipped_by_the_watermark(postgres, warehouse, instance):
    generate(postgres, scale=2_000, now=NOW)
    incremental(postgres, warehouse, instance)
    slow_writer = PostgresResource(url=postgres.url).engine.connect()
    try:
        transaction = slow_writer.begin()
        from sqlalchemy import text
        slow_writer.execute(text("UPDATE builds SET error = 'written by a slow transaction' WHERE id = 3"))
        sql(postgres, "UPDATE builds SET error = 'quick' WHERE id = 4")  # commits while the slow one is open
        incremental(postgres, warehouse, instance)  # must not move the watermark past the slow writer
        transaction.commit()
    finally:
        slow_writer.close()
    incremental(postgres, warehouse, instance)
    with warehouse.client() as ch:
        errors = dict(ch.query("SELECT id, error FROM builds FINAL WHERE id IN (3, 4)").result_rows)
    assert errors == {3: "written by a slow transaction", 4: "quick"}




def test_the_backfill_policy_is_a_single_run():
    assert BUILDS_ASSET.backfill_policy == dg.BackfillPolicy.single_run()


def first_release_table(postgres, warehouse) -> None:
    """`builds` as the first release made it: daily partitions, `_version` sent rather than computed."""
    with postgres.begin() as conn:
        ddl = BUILDS.ddl(postgres_columns(conn, "builds"))
    with warehouse.client() as ch:
        ch.command(ddl.replace(f" DEFAULT {BUILDS.clickhouse_version()}", "").replace("toYYYYMM(", "toYYYYMMDD("))


@pytest.mark.parametrize("layout", ["monthly", "first release, daily"])
def test_more_than_a_hundred_days_move_in_one_insert_stream(postgres, warehouse, instance, layout):
    sql(postgres, """INSERT INTO builds (prd_name, status, started_at)
                     SELECT 'p' || g, 'completed', timestamptz '2026-01-01' + make_interval(days => g % 150)
                     FROM generate_series(1, 3000) g""")
    if layout != "monthly":
        first_release_table(postgres, warehouse)
    incremental(postgres, warehouse, instance)
    assert parity_postgres(BUILDS, postgres) == parity_warehouse(BUILDS, warehouse)
    result = sync(postgres, warehouse, instance, tags={"dagster/asset_partition_range_start": "2026-01-01",
                                                       "dagster/asset_partition_range_end": "2026-06-30"})
    assert len(result.asset_materializations_for_node("warehouse__builds")) == 181
    assert parity_postgres(BUILDS, postgres) == parity_warehouse(BUILDS, warehouse)


def test_deletes_propagate_but_retention_deletes_keep_the_warehouse_copy(postgres, warehouse, instance):
    generate(postgres, scale=2_000, now=NOW)
    incremental(postgres, warehouse, instance)
    sql(postgres, "DELETE FROM builds WHERE id IN (5, 6)")
    result = incremental(postgres, warehouse, instance)
    assert result.asset_materializations_for_node("warehouse__builds")[-1].metadata["deletes"].value == 2
    with warehouse.client() as ch:
        assert ch.query("SELECT count() FROM builds FINAL WHERE id IN (5, 6)").result_rows[0][0] == 0
    assert parity_postgres(BUILDS, postgres) == parity_warehouse(BUILDS, warehouse)

    with postgres.begin() as conn:  # how retention jobs delete: the warehouse is where old rows live on
        conn.execute(text("SET LOCAL ops.retention = 'on'"))
        conn.execute(text("DELETE FROM builds WHERE id = 7"))
    incremental(postgres, warehouse, instance)
    with warehouse.client() as ch:
        assert ch.query("SELECT count() FROM builds FINAL WHERE id = 7").result_rows[0][0] == 1


def test_an_unsupported_type_is_named_before_any_row_moves(postgres, warehouse):
    sql(postgres, "CREATE TABLE gauges (id bigint PRIMARY KEY, reading numeric, span int4range, "
                  "created_at timestamptz NOT NULL DEFAULT now(), updated_at timestamptz NOT NULL DEFAULT now())")
    sql(postgres, "INSERT INTO gauges (id, reading) VALUES (1, 1.5)")
    with warehouse.client() as ch, pytest.raises(UnsupportedType, match=r"gauges\.reading: numeric without a precision"):
        engine.prepare(SyncedTable("gauges", partition_column="created_at"), postgres, ch)
    sql(postgres, "ALTER TABLE gauges ALTER COLUMN reading TYPE numeric(10, 3)")
    with warehouse.client() as ch, pytest.raises(UnsupportedType, match=r"gauges\.span: Postgres type 'int4range'"):
        engine.prepare(SyncedTable("gauges", partition_column="created_at"), postgres, ch)
    with warehouse.client() as ch:
        assert ch.query("EXISTS TABLE gauges").result_rows[0][0] == 0  # nothing was created, nothing moved


def test_a_role_that_cannot_see_other_sessions_is_refused(postgres, warehouse, database_url):
    sql(postgres, "DO $$ BEGIN CREATE ROLE blind_sync LOGIN; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
    sql(postgres, "GRANT ALL ON ALL TABLES IN SCHEMA public TO blind_sync")
    blind = PostgresResource(url=database_url.replace("postgres@", "blind_sync@"))
    with warehouse.client() as ch, pytest.raises(engine.SyncPermissionError, match="GRANT pg_read_all_stats"):
        engine.prepare(BUILDS, blind, ch)


def test_each_path_reports_itself_and_the_pull_never_scans_the_whole_table(postgres, warehouse, instance):
    sql(postgres, """INSERT INTO builds (prd_name, status, started_at)
                     SELECT 'p' || g, 'completed', now() - make_interval(mins => g) FROM generate_series(1, 20000) g""")
    first = incremental(postgres, warehouse, instance)
    expected_path = "server pull" if warehouse.pull_postgres_url else "client stream"
    assert first.asset_materializations_for_node("warehouse__builds")[-1].metadata["path"].value == expected_path
    sql(postgres, "UPDATE builds SET status = 'failed' WHERE id <= 50")
    sql(postgres, "ANALYZE builds")
    sql(postgres, "SELECT pg_stat_force_next_flush()")
    scans_before = sql(postgres, "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'builds'")
    incremental(postgres, warehouse, instance)
    sql(postgres, "SELECT pg_stat_force_next_flush()")
    scans_after = sql(postgres, "SELECT seq_scan FROM pg_stat_user_tables WHERE relname = 'builds'")
    assert scans_after == scans_before, "the incremental window must reach Postgres as an index range, not a full scan"
    assert parity_postgres(BUILDS, postgres) == parity_warehouse(BUILDS, warehouse)


def test_arrays_arrive_with_their_elements_and_nulls(postgres, warehouse, instance):
    sql(postgres, "CREATE TABLE tagged (id bigint PRIMARY KEY, tags text[], scores int[], "
                  "created_at timestamptz NOT NULL DEFAULT '2026-11-01', updated_at timestamptz NOT NULL DEFAULT now())")
    sql(postgres, """INSERT INTO tagged (id, tags, scores) VALUES
        (1, ARRAY['a', 'it''s', 'back\\slash', NULL, 'comma,here'], ARRAY[1, NULL, 3]),
        (2, '{}', '{}'), (3, NULL, NULL)""")
    table = SyncedTable("tagged", partition_column="created_at")
    with warehouse.client() as ch:
        engine.incremental(engine.prepare(table, postgres, ch), postgres, ch, warehouse.pull_postgres_url)
        rows = ch.query("SELECT id, tags, scores FROM tagged FINAL ORDER BY id").result_rows
    assert rows == [(1, ["a", "it's", "back\\slash", None, "comma,here"], [1, None, 3]),
                    (2, [], []), (3, [], [])]  # a NULL array has no ClickHouse type: it arrives empty


def test_a_big_window_moves_in_parallel_key_ranges_and_stays_exact(postgres, warehouse, instance):
    generate(postgres, scale=4_000, now=NOW)
    warehouse = WarehouseResource(url=warehouse.url, database=warehouse.database,  # every window counts as big
                                  pull_postgres_url=warehouse.pull_postgres_url, parallel_from_rows=1)
    assert engine.key_ranges(postgres, BUILDS, "true", {}) == engine.WHOLE  # 4 000 rows: one stream by default
    ranges = engine.key_ranges(postgres, BUILDS, "true", {}, parallel_from_rows=1)
    assert len(ranges) == engine.STREAMS and ranges[0][0] is None and ranges[-1][1] is None
    incremental(postgres, warehouse, instance)
    sql(postgres, "UPDATE builds SET status = 'failed' WHERE id % 3 = 0")
    incremental(postgres, warehouse, instance)
    assert parity_postgres(BUILDS, postgres) == parity_warehouse(BUILDS, warehouse)
    sync(postgres, warehouse, instance, tags={"dagster/asset_partition_range_start": "2026-10-01",
                                              "dagster/asset_partition_range_end": "2026-11-20"})
    assert parity_postgres(BUILDS, postgres) == parity_warehouse(BUILDS, warehouse)


def test_a_stream_that_fails_half_way_raises_instead_of_passing_for_complete(postgres, warehouse):
    from psycopg import DatabaseError
    with warehouse.client() as ch:
        ch.command("CREATE TABLE halves (n Int64) ENGINE = MergeTree ORDER BY n")
        with pytest.raises(DatabaseError, match="division by zero"):
            # Several chunks reach ClickHouse before the error: the stream must not end as if it were complete.
            engine.copy_into(ch, "halves", ["n"], postgres,
                             "SELECT g + 0 * (1 / (1500000 - g)) FROM generate_series(1, 2000000) g", {})
        assert engine.copy_into(ch, "halves", ["n"], postgres, "SELECT g FROM generate_series(1, 10) g", {}) == 10
