"""The sync's promise at the edges (issue 9), on both paths: after any committed transactions,
ClickHouse through FINAL equals Postgres; a value ClickHouse cannot hold holds back its row alone."""

import math
from datetime import UTC, datetime

import dagster as dg
import pytest
from helpers import sql
from sqlalchemy import text

from ops_platform.assets.sync import REJECTS_CHECK, WAREHOUSE_ASSETS
from ops_platform.notifications import NotifierResource
from ops_platform.resources.postgres import PostgresResource
from ops_platform.sync import engine
from ops_platform.sync.spec import BUILDS, SyncedTable
from ops_platform.sync.types import UnsupportedType

BUILDS_ASSET = WAREHOUSE_ASSETS[0]
INCREMENTAL = {"ops": {"warehouse__builds": {"config": {"mode": "incremental"}}}}


def sync_table(table: SyncedTable, postgres, wh) -> engine.SyncResult:
    with wh.client() as ch:
        return engine.incremental(engine.prepare(table, postgres, ch), postgres, ch, wh.pull_postgres_url)


def materialize_builds(postgres, wh, instance):
    return dg.materialize([BUILDS_ASSET], instance=instance, partition_key="2026-11-20", run_config=INCREMENTAL,
                          resources={"postgres": postgres, "warehouse": wh, "notifier": NotifierResource(postgres=postgres)})


def builds_in_warehouse(wh) -> dict:
    with wh.client() as ch:
        return dict(ch.query("SELECT id, prd_name FROM builds FINAL").result_rows)


def builds_in_postgres(postgres) -> dict:
    return dict(sql(postgres, "SELECT id, prd_name FROM builds"))


def add_build(postgres, name: str, build_id: int | None = None, started: str = "2026-11-20 10:00+00") -> None:
    sql(postgres, "INSERT INTO builds (id, prd_name, status, started_at) VALUES "
                  "(coalesce(CAST(:id AS bigint), nextval('builds_id_seq')), :n, 'completed', CAST(:s AS timestamptz))",
        id=build_id, n=name, s=started)


# -- 1. no row lost or kept -------------------------------------------------------------------------

def test_delete_and_reinsert_of_one_key_in_one_transaction_keeps_the_new_row(postgres, wh):
    add_build(postgres, "first", 1)
    sync_table(BUILDS, postgres, wh)
    with postgres.begin() as conn:
        conn.execute(text("DELETE FROM builds WHERE id = 1"))
        conn.execute(text("INSERT INTO builds (id, prd_name, status, started_at) "
                          "VALUES (1, 'second', 'completed', '2026-11-20 10:00+00')"))
    sync_table(BUILDS, postgres, wh)
    assert builds_in_warehouse(wh) == {1: "second"}


def test_versions_are_strictly_ordered_within_a_transaction(postgres, wh):
    add_build(postgres, "a", 1)
    sync_table(BUILDS, postgres, wh)  # installs the tombstone trigger
    with postgres.begin() as conn:
        stamps = [conn.execute(text("UPDATE builds SET prd_name = :n WHERE id = 1 RETURNING updated_at"),
                               {"n": str(i)}).scalar_one() for i in range(50)]
        conn.execute(text("DELETE FROM builds WHERE id = 1"))
        tombstone = conn.execute(text("SELECT deleted_at FROM sync_tombstones WHERE key_value = 1")).scalar_one()
    assert all(a < b for a, b in zip(stamps, stamps[1:], strict=False)) and stamps[-1] < tombstone


def test_a_changed_primary_key_is_a_delete_of_the_old_key(postgres, wh):
    add_build(postgres, "moving", 1)
    sync_table(BUILDS, postgres, wh)
    sql(postgres, "UPDATE builds SET id = 2 WHERE id = 1")
    sync_table(BUILDS, postgres, wh)
    assert builds_in_warehouse(wh) == {2: "moving"}


def test_a_key_swap_in_one_statement_keeps_both_rows(postgres, wh):
    sql(postgres, "CREATE TABLE pairs (id bigint PRIMARY KEY DEFERRABLE, name text NOT NULL, "
                  "created_at timestamptz NOT NULL, updated_at timestamptz NOT NULL DEFAULT now())")
    pairs = SyncedTable("pairs", partition_column="created_at")
    sql(postgres, "INSERT INTO pairs VALUES (1, 'one', '2026-01-05'), (2, 'two', '2026-03-05')")
    sync_table(pairs, postgres, wh)
    sql(postgres, "UPDATE pairs SET id = 3 - id")  # one statement: the tombstones are stamped after both rows
    sync_table(pairs, postgres, wh)
    with wh.client() as ch:
        assert dict(ch.query("SELECT id, name FROM pairs FINAL").result_rows) == {2: "one", 1: "two"}


@pytest.mark.parametrize("new_start", ["2026-11-25 10:00+00", "2026-09-01 10:00+00"], ids=["same month", "other month"])
def test_a_row_moved_to_another_partition_appears_once(postgres, wh, new_start):
    add_build(postgres, "moving", 1)
    sync_table(BUILDS, postgres, wh)
    sql(postgres, "UPDATE builds SET started_at = CAST(:s AS timestamptz) WHERE id = 1", s=new_start)
    sync_table(BUILDS, postgres, wh)
    with wh.client() as ch:
        rows = ch.query("SELECT id, started_at FROM builds FINAL").result_rows
    assert [(i, t.replace(tzinfo=UTC)) for i, t in rows] == [(1, datetime.fromisoformat(new_start))]


def test_the_later_write_wins_even_from_the_older_transaction(postgres, wh):
    """An older transaction that writes last (it waited on the row lock) holds Postgres' value."""
    add_build(postgres, "original", 1)
    sync_table(BUILDS, postgres, wh)
    older = PostgresResource(url=postgres.url).engine.connect()
    try:
        with older.begin():
            older.execute(text("SELECT 1"))  # the transaction starts here, before the other writer's
            sql(postgres, "UPDATE builds SET prd_name = 'younger transaction' WHERE id = 1")
            older.execute(text("UPDATE builds SET prd_name = 'older transaction, later write' WHERE id = 1"))
    finally:
        older.close()
    sync_table(BUILDS, postgres, wh)
    assert builds_in_warehouse(wh) == builds_in_postgres(postgres) == {1: "older transaction, later write"}


# -- 2. values ClickHouse cannot hold: the row waits in sync_rejects, the rest moves -----------------

def test_a_nan_cost_holds_back_its_row_only_and_turns_the_check_red(postgres, wh, instance):
    add_build(postgres, "good before", 1)
    sql(postgres, "INSERT INTO builds (id, prd_name, status, started_at, cost_usd) "
                  "VALUES (2, 'bad', 'completed', '2026-11-20 11:00+00', 'NaN')")
    add_build(postgres, "good after", 3)
    result = materialize_builds(postgres, wh, instance)
    assert builds_in_warehouse(wh) == {1: "good before", 3: "good after"}
    assert sql(postgres, "SELECT key_value, column_name, value FROM sync_rejects WHERE resolved_at IS NULL") == \
        [(2, "cost_usd", "NaN")]
    check = result.get_asset_check_evaluations()[0]
    assert check.check_name == REJECTS_CHECK and not check.passed
    assert "builds.cost_usd key 2: 'NaN'" in check.metadata["oldest"].value
    assert sql(postgres, "SELECT count(*) FROM notifications WHERE type = 'warehouse.rejects'") == [(1,)]

    add_build(postgres, "still moving", 4)  # every later sync goes on
    sql(postgres, "UPDATE builds SET cost_usd = 12.5 WHERE id = 2")  # fixed in Postgres
    fixed = materialize_builds(postgres, wh, instance)
    assert builds_in_warehouse(wh) == builds_in_postgres(postgres)
    assert fixed.get_asset_check_evaluations()[0].passed
    assert sql(postgres, "SELECT count(*) FROM sync_rejects WHERE resolved_at IS NULL") == [(0,)]


KEYS = "id bigint PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT '2026-11-01', " \
       "updated_at timestamptz NOT NULL DEFAULT now()"
SCALARS = SyncedTable("scalars", partition_column="created_at")
SCALAR_COLUMNS = "i2 smallint, i4 integer, i8 bigint, f4 real, f8 double precision, n numeric(38,10), b boolean, " \
                 "t text, vc varchar(20), ch char(3), u uuid, d date, ts timestamp, tz timestamptz, j json, jb jsonb"
SCALAR_ROWS = [
    """(1, -32768, -2147483648, -9223372036854775808, '-Infinity', '-Infinity',
        -9999999999999999999999999999.9999999999, false, '', '', 'a', '00000000-0000-0000-0000-000000000000',
        '0001-01-01', '0001-01-01 00:00:00', '0001-01-01 00:00:00+00', '{"a": [1, {"b": null}],  "c": "\\t"}',
        '{"z": 1, "a": "ü"}')""",
    """(2, 32767, 2147483647, 9223372036854775807, 'Infinity', 'NaN', 9999999999999999999999999999.9999999999, true,
        repeat('x', 100000) || E'\\n\\r\\\\ end ☃\\t', 'twenty chars ......', 'abc',
        'ffffffff-ffff-ffff-ffff-ffffffffffff', '9999-12-31', '9999-12-31 23:59:59.999999',
        '9999-12-31 23:59:59.999999+00', '[]', 'null')""",
    "(3, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL)",
    """(4, 0, 0, 0, 1.17549435e-38, 5e-324, 0.0000000001, false, E'line\\nbreak', 'x', ' ',
        '123e4567-e89b-12d3-a456-426614174000', '1970-01-01', '1899-12-31 23:59:59.000001', '2262-04-12 00:00:00+00',
        '"just a string"', '{"nested": {"deeper": [[], {}]}}')""",
    "(5, 1, 1, 1, -0, -0, -0.0000000001, true, 'x', 'x', 'x', NULL, '2026-02-28', '2026-03-29 02:30:00', "
    "'2026-10-25 01:30:00+00', '{}', '{}')",
]
ARRAYS = SyncedTable("arrays", partition_column="created_at")
ARRAY_COLUMNS = "ai int[], a2 smallint[], a8 bigint[], at text[], av varchar[], af float8[], ab bool[]"
ARRAY_ROWS = [  # the first row's arrays are empty or NULL: ClickHouse's postgresql() could not infer them
    "(1, '{}', NULL, NULL, '{}', '{}', '{}', NULL)",
    """(2, '{2147483647, NULL, -2147483648}', '{32767, -32768, NULL}', '{-9223372036854775808}',
        '{"", NULL, "a,b", "{x}", "q\\"uote", "back\\\\slash", "tab\there", "[1]", "it''s", "NULL"}',
        '{"", "x,y", NULL}', '{NaN, Infinity, -Infinity, -0, 5e-324}', '{true, NULL, false}')""",
    "(3, '{NULL}', '{0}', '{}', '{NULL}', '{NULL}', '{NULL}', '{NULL}')",
]


def same(pg, ch) -> bool:
    if isinstance(pg, float):
        return (math.isnan(pg) and math.isnan(ch)) or (pg == ch and math.copysign(1, pg) == math.copysign(1, ch))
    if isinstance(pg, list):
        return len(pg) == len(ch or []) and all(same(a, b) for a, b in zip(pg, ch, strict=False))
    if isinstance(pg, datetime) and pg.tzinfo:
        return pg == ch.replace(tzinfo=UTC)
    return pg == ch


def make_table(postgres, table: SyncedTable, columns: str, rows: list[str]) -> list[str]:
    sql(postgres, f"CREATE TABLE {table.name} ({KEYS}, {columns})")
    names = ["id", *(c.split()[0] for c in columns.split(", "))]
    if rows:
        sql(postgres, f"INSERT INTO {table.name} ({', '.join(names)}) VALUES " + ", ".join(rows))
    return names


@pytest.mark.parametrize(("table", "columns", "rows"), [(SCALARS, SCALAR_COLUMNS, SCALAR_ROWS),
                                                        (ARRAYS, ARRAY_COLUMNS, ARRAY_ROWS)], ids=["scalars", "arrays"])
def test_every_supported_type_arrives_exactly_at_its_edges(postgres, wh, table, columns, rows):
    names = make_table(postgres, table, columns, rows)
    result = sync_table(table, postgres, wh)
    assert result.rows == len(rows) and result.rejected == 0
    as_text = ", ".join(f"{n}::text" if n in ("j", "jb") else f"{n}::float8" if n == "f4" else n for n in names)
    pg_rows = sql(postgres, f"SELECT {as_text} FROM {table.name} ORDER BY id")
    with wh.client() as ch:
        ch_rows = ch.query(f"SELECT {', '.join(names)} FROM {table.name} FINAL ORDER BY id").result_rows
    for pg_row, ch_row in zip(pg_rows, ch_rows, strict=True):
        for name, pg, got in zip(names, pg_row, ch_row, strict=True):
            expected = [] if pg is None and table is ARRAYS else pg  # ClickHouse has no NULL array
            assert same(expected, got), f"{table.name}.{name} of row {pg_row[0]}: {pg!r} arrived as {got!r}"


REJECTED = [
    (SCALARS, "n", "'NaN'", "NaN"),
    (SCALARS, "tz", "'infinity'", "infinity"),
    (SCALARS, "tz", "'-infinity'", "-infinity"),
    (SCALARS, "tz", "'0044-03-15 12:00+00 BC'", "0044-03-15 12:00:00+00 BC"),
    (SCALARS, "ts", "'infinity'", "infinity"),
    (SCALARS, "ts", "'10000-01-01'", "10000-01-01 00:00:00"),
    (SCALARS, "d", "'-infinity'", "-infinity"),
    (SCALARS, "d", "'10000-01-01'", "10000-01-01"),
    (SCALARS, "created_at", "'infinity'", "infinity"),
    (ARRAYS, "ai", "'{{1,2},{3,4}}'", "{{1,2},{3,4}}"),
    (ARRAYS, "at", "'[0:1]={a,b}'", "[0:1]={a,b}"),
]


def test_each_value_clickhouse_cannot_hold_waits_in_rejects_and_nothing_else_does(postgres, wh):
    """One row per kind of value (key 100 + its place in REJECTED), between good rows 1 and 2."""
    for table in (SCALARS, ARRAYS):
        make_table(postgres, table, SCALAR_COLUMNS if table is SCALARS else ARRAY_COLUMNS, [])
        sql(postgres, f"INSERT INTO {table.name} (id) VALUES (1), (2)")
    for n, (table, column, literal, _) in enumerate(REJECTED):
        sql(postgres, f"INSERT INTO {table.name} (id, {column}) VALUES ({100 + n}, {literal})")
    held = {t: sync_table(t, postgres, wh).rejected for t in (SCALARS, ARRAYS)}
    assert held == {SCALARS: 9, ARRAYS: 2}
    for table in (SCALARS, ARRAYS):
        with wh.client() as ch:
            ids = [r[0] for r in ch.query(f"SELECT id FROM {table.name} FINAL ORDER BY id").result_rows]
            stored = ch.query(f"SELECT count() FROM {table.name}").result_rows[0][0]
        assert ids == [1, 2] and stored == 2, f"{table.name}: never a changed value, never a stopped table"
    quarantined = sql(postgres, "SELECT table_name, key_value, column_name, value FROM sync_rejects ORDER BY key_value")
    assert quarantined == [(t.name, 100 + n, c, v) for n, (t, c, _, v) in enumerate(REJECTED)]

    for table, column, _, _ in REJECTED:
        sql(postgres, f"UPDATE {table.name} SET {column} = DEFAULT WHERE id >= 100")
    for table in (SCALARS, ARRAYS):
        sync_table(table, postgres, wh)
        with wh.client() as ch:
            count = ch.query(f"SELECT count() FROM {table.name} FINAL").result_rows[0][0]
        assert count == sql(postgres, f"SELECT count(*) FROM {table.name}")[0][0]
    assert sql(postgres, "SELECT count(*) FROM sync_rejects WHERE resolved_at IS NULL") == [(0,)]


def test_a_held_back_row_deleted_in_postgres_is_deleted_in_clickhouse(postgres, wh):
    """The row's last good version reached ClickHouse, then it became unholdable, then it was deleted."""
    make_table(postgres, SCALARS, SCALAR_COLUMNS, ["(1, 1, 1, 1, 1, 1, 1, true, 'a', 'a', 'a', NULL, NULL, "
                                                   "NULL, NULL, NULL, NULL)"])
    sync_table(SCALARS, postgres, wh)
    sql(postgres, "UPDATE scalars SET created_at = 'infinity', n = 'NaN' WHERE id = 1")
    assert sync_table(SCALARS, postgres, wh).rejected == 1  # one row held back (two columns on the record)
    sql(postgres, "DELETE FROM scalars WHERE id = 1")
    result = sync_table(SCALARS, postgres, wh)
    with wh.client() as ch:
        assert ch.query("SELECT count() FROM scalars FINAL").result_rows == [(0,)]
    assert result.deletes == 1
    assert sql(postgres, "SELECT count(*) FROM sync_rejects WHERE resolved_at IS NULL") == [(0,)]


def test_a_numeric_wider_than_clickhouse_is_named_up_front_with_the_way_out(postgres, wh):
    sql(postgres, "CREATE TABLE ledger (id bigint PRIMARY KEY, amount numeric(80, 2), "
                  "created_at timestamptz NOT NULL DEFAULT '2026-11-01', updated_at timestamptz NOT NULL DEFAULT now())")
    sql(postgres, "INSERT INTO ledger (id, amount) VALUES (1, 123456789012345678901234567890123456789012345678901234567890.25)")
    with wh.client() as ch, pytest.raises(UnsupportedType, match=r"ledger\.amount: numeric\(80, 2\) .*text_columns"):
        engine.prepare(SyncedTable("ledger", partition_column="created_at"), postgres, ch)
    sync_table(SyncedTable("ledger", partition_column="created_at", text_columns=("amount",)), postgres, wh)
    with wh.client() as ch:
        assert ch.query("SELECT amount FROM ledger FINAL").result_rows == \
            [("123456789012345678901234567890123456789012345678901234567890.25",)]


def test_a_backfill_keeps_the_tombstone_of_a_row_that_moved_in_then_was_deleted(postgres, wh, instance):
    """Its older copy lives on in the month it moved from: dropping the tombstone would bring it back."""
    add_build(postgres, "feb", 1, started="2026-02-10 10:00+00")
    sync_table(BUILDS, postgres, wh)
    sql(postgres, "UPDATE builds SET started_at = '2026-01-10 10:00+00' WHERE id = 1")
    sync_table(BUILDS, postgres, wh)
    sql(postgres, "DELETE FROM builds WHERE id = 1")
    sync_table(BUILDS, postgres, wh)
    dg.materialize([BUILDS_ASSET], instance=instance, partition_key="2026-01-10",
                   resources={"postgres": postgres, "warehouse": wh, "notifier": NotifierResource(postgres=postgres)})
    assert builds_in_warehouse(wh) == builds_in_postgres(postgres) == {}


def test_a_row_released_without_a_write_moves_by_key(postgres, wh):
    """Its held-back column was dropped: no window brings the row again, so the sync moves it by key."""
    add_build(postgres, "good", 1)
    sql(postgres, "INSERT INTO builds (id, prd_name, status, started_at, completed_at) "
                  "VALUES (2, 'held', 'completed', '2026-11-20 10:00+00', 'infinity')")
    assert sync_table(BUILDS, postgres, wh).rejected == 1
    sql(postgres, "ALTER TABLE builds DROP COLUMN completed_at")  # updated_at does not move
    sync_table(BUILDS, postgres, wh)
    assert builds_in_warehouse(wh) == {1: "good", 2: "held"}
    assert sql(postgres, "SELECT count(*) FROM sync_rejects WHERE resolved_at IS NULL") == [(0,)]


def test_the_sync_triggers_never_block_a_key_type_change(postgres, wh):
    sql(postgres, "CREATE TABLE small_keys (id integer PRIMARY KEY, created_at timestamptz NOT NULL DEFAULT now(), "
                  "updated_at timestamptz NOT NULL DEFAULT now())")
    table = SyncedTable("small_keys", partition_column="created_at")
    sql(postgres, "INSERT INTO small_keys (id) VALUES (1), (2)")
    sync_table(table, postgres, wh)
    sql(postgres, "ALTER TABLE small_keys ALTER COLUMN id TYPE bigint")  # the usual migration of an int key
    sql(postgres, "UPDATE small_keys SET id = 3 WHERE id = 2")  # and the triggers still work
    assert sql(postgres, "SELECT key_value FROM sync_tombstones WHERE table_name = 'small_keys'") == [(2,)]
    # ClickHouse cannot retype a sorting key column in place: that table stops with one sentence.
    with pytest.raises(engine.SchemaDrift, match=r"small_keys\.id changed in Postgres from Int32 to Int64, .*"
                                                 r"sorting or partition key column; the way out: "):
        sync_table(table, postgres, wh)
