"""The sync's promise as a property (issue 9): after any sequence of committed Postgres transactions,
ClickHouse through FINAL equals Postgres, key for key and column for column, on both paths.

Hypothesis draws sequences of inserts, updates, deletes, key changes, partition moves and
delete-then-reinsert of one key, some inside one transaction, some from two concurrent transactions
(with a sync while one is still open), an older transaction writing last, syncs at random points and
syncs that die between the ClickHouse insert and the watermark update. Postgres is the oracle.
Bounded (and derandomized, so CI is repeatable): about 20 s a path.
"""

from helpers import sql
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from ops_platform.resources.postgres import PostgresResource
from ops_platform.sync import engine
from ops_platform.sync.spec import SyncedTable

TABLE = SyncedTable("prop", partition_column="part")
DAYS = ["2026-01-05", "2026-01-20", "2026-02-10"]  # two days of one ClickHouse partition, one of another

keys = st.integers(1, 5)
values = st.sampled_from(["a", "b", "c", ""])
days = st.sampled_from(DAYS)
operation = st.one_of(
    st.tuples(st.just("upsert"), keys, values, days),
    st.tuples(st.just("delete"), keys),
    st.tuples(st.just("rekey"), keys, keys),
    st.tuples(st.just("move"), keys, days),
    st.tuples(st.just("reinsert"), keys, values),  # delete and insert one key in one transaction
)
step = st.one_of(
    st.tuples(st.just("transaction"), st.lists(operation, min_size=1, max_size=4)),
    st.tuples(st.just("concurrent"), st.lists(operation, max_size=3), st.lists(operation, max_size=3), st.booleans()),
    st.tuples(st.just("late_writer"), keys, values, values),
    st.just(("sync",)),
    st.just(("crash",)),
)


def apply(conn, op, key_of=lambda k: k) -> None:
    """One operation in `conn`'s transaction; one that does not apply to the current rows does nothing."""
    kind, key = op[0], key_of(op[1])
    if kind == "upsert":
        conn.execute(text("INSERT INTO prop (id, val, part) VALUES (:k, :v, CAST(:d AS timestamptz)) "
                          "ON CONFLICT (id) DO UPDATE SET val = EXCLUDED.val, part = EXCLUDED.part"),
                     {"k": key, "v": op[2], "d": op[3]})
    elif kind == "delete":
        conn.execute(text("DELETE FROM prop WHERE id = :k"), {"k": key})
    elif kind == "rekey":
        conn.execute(text("UPDATE prop SET id = :n WHERE id = :k AND NOT EXISTS (SELECT 1 FROM prop WHERE id = :n)"),
                     {"k": key, "n": key_of(op[2])})
    elif kind == "move":
        conn.execute(text("UPDATE prop SET part = CAST(:d AS timestamptz) WHERE id = :k"), {"k": key, "d": op[2]})
    else:
        part = conn.execute(text("DELETE FROM prop WHERE id = :k RETURNING part"), {"k": key}).scalar()
        if part is not None:
            conn.execute(text("INSERT INTO prop (id, val, part) VALUES (:k, :v, :p)"), {"k": key, "v": op[2], "p": part})


def sync(postgres, wh, crash: bool = False) -> None:
    with wh.client() as ch:
        plan = engine.prepare(TABLE, postgres, ch)
        before = sql(postgres, "SELECT watermark FROM sync_state WHERE table_name = 'prop'")
        engine.incremental(plan, postgres, ch, wh.pull_postgres_url)
    if crash:  # the state a run leaves when it dies after its ClickHouse insert, before the watermark moves
        sql(postgres, "UPDATE sync_state SET pending_upper = watermark, watermark = :w WHERE table_name = 'prop'",
            w=before[0][0] if before else None)


def assert_equal(postgres, wh) -> None:
    expected = sql(postgres, "SELECT id, val, to_char(part AT TIME ZONE 'UTC', 'YYYY-MM-DD') FROM prop ORDER BY id")
    with wh.client() as ch:
        got = ch.query("SELECT id, val, toString(toDate(part)) FROM prop FINAL ORDER BY id").result_rows
    assert [tuple(r) for r in got] == [tuple(r) for r in expected]


def run(postgres, wh, steps) -> None:
    for s in steps:
        if s[0] == "transaction":
            with postgres.begin() as conn:
                for op in s[1]:
                    apply(conn, op)
        elif s[0] == "concurrent":  # disjoint keys (even for the open transaction, odd for the other): no waits
            other = PostgresResource(url=postgres.url).engine.connect()
            try:
                with other.begin():
                    for op in s[1]:
                        apply(other, op, key_of=lambda k: 2 * k)
                    for op in s[2]:
                        with postgres.begin() as conn:
                            apply(conn, op, key_of=lambda k: 2 * k - 1)
                    if s[3]:
                        sync(postgres, wh)  # must not pass the open transaction
            finally:
                other.close()
        elif s[0] == "late_writer":  # the older transaction writes last, after waiting for nothing
            older = PostgresResource(url=postgres.url).engine.connect()
            try:
                with older.begin():
                    older.execute(text("SELECT 1"))
                    with postgres.begin() as conn:
                        apply(conn, ("upsert", s[1], s[2], DAYS[0]))
                    apply(older, ("upsert", s[1], s[3], DAYS[1]))
            finally:
                older.close()
        else:
            sync(postgres, wh, crash=s[0] == "crash")
            if s[0] == "sync":
                assert_equal(postgres, wh)
    sync(postgres, wh)
    assert_equal(postgres, wh)


def test_final_equals_postgres_after_any_transactions(postgres, wh):
    sql(postgres, "CREATE TABLE prop (id bigint PRIMARY KEY, val text NOT NULL, part timestamptz NOT NULL, "
                  "updated_at timestamptz NOT NULL DEFAULT now())")
    sync(postgres, wh)  # creates the ClickHouse table and installs the triggers

    @settings(max_examples=25, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
    @given(st.lists(step, min_size=1, max_size=8))
    def property_holds(steps):
        sql(postgres, "TRUNCATE prop, sync_tombstones, sync_state")
        with wh.client() as ch:
            ch.command("TRUNCATE TABLE prop")
        run(postgres, wh, steps)

    property_holds()
