"""The two ways a synced table moves: `incremental` (changed rows since the watermark) and
`replace_partitions` (an exact copy of the requested days).

Rows stream from Postgres with COPY (text format) straight into ClickHouse as TabSeparated: the
two formats share their escaping, so jsonb text, NULLs and timestamps arrive byte for byte and
memory stays bounded by a few chunks (see stream.py). A big window is split into key ranges read
by parallel streams (Postgres formats rows on one core per stream); a small one is one stream.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime

from clickhouse_connect.driver.client import Client
from psycopg import ClientCursor
from sqlalchemy import text

from ops_platform.resources.postgres import PostgresResource
from ops_platform.sync.evolve import SchemaChange, SchemaDrift, apply_changes, plan_changes
from ops_platform.sync.rejects import keep_predicate, record_rejects
from ops_platform.sync.spec import SyncedTable
from ops_platform.sync.stream import copy_streams
from ops_platform.sync.types import Column, TimeRange, warehouse_time_range

# A block may span any number of days: a backfill of a year is one insert stream. Blocks of 262 144
# rows: ClickHouse writes one block's parts while the next streams in, and a 5 M-row load peaks at
# 0.73–0.83 GB instead of 1.4 GB with 1 M-row blocks. One parsing thread: the cores are busy with Postgres'
# COPY streams, and parallel parsing only added buffers (measured: same speed, +200 MB).
BLOCK_ROWS = 262_144
# Timestamps: the sync sends UTC wall time, other copies Postgres' "…+00"; best_effort reads both,
# whatever the server's or profile's default.
INSERT_SETTINGS = {"max_partitions_per_insert_block": 0, "min_insert_block_size_rows": BLOCK_ROWS,
                   "max_insert_block_size": BLOCK_ROWS, "max_threads": 1, "date_time_input_format": "best_effort"}
# Parallel streams interleave their chunks, so a repeated window never forms the same blocks:
# insert deduplication could not drop it and would only cost hashing (FINAL keeps it exact).
PARALLEL_SETTINGS = INSERT_SETTINGS | {"insert_deduplicate": 0}
# A server pull reads its key ranges on parallel threads of ClickHouse's own.
PARALLEL_PULL_SETTINGS = PARALLEL_SETTINGS | {"max_threads": 2, "max_insert_threads": 2}
STREAMS = 2                   # the machines we size for have two cores
# Postgres' estimate for the window from which two streams pay; below it one stream is as fast.
PARALLEL_FROM_ROWS = 300_000  # a window Postgres estimates smaller moves as one stream (WarehouseResource)

UNPULLABLE = {"ARRAY", "real", "double precision"}  # see Plan.pullable
MAX_PULL_EXCLUDED_KEYS = 1000  # more held-back rows in one window: that window moves on the client stream

# The newest instant before which every transaction has ended: rows stamped earlier are committed
# (a row's updated_at is never earlier than its writer's transaction start), so a watermark never
# skips a late commit.
SAFE_UPPER_SQL = text("""
SELECT least(clock_timestamp(), coalesce(min(xact_start), clock_timestamp()))
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
  AND pid <> pg_backend_pid() AND xact_start IS NOT NULL AND state <> 'idle'
""")


class SyncPermissionError(PermissionError):
    """The sync's role cannot see other sessions, so it cannot tell which rows are committed."""


# Without this, pg_stat_activity hides other users' transactions and the watermark could pass a
# transaction that commits later: the sync refuses rather than silently skipping rows.
CAN_SEE_SESSIONS_SQL = text(
    "SELECT rolsuper OR pg_has_role(current_user, 'pg_read_all_stats', 'member') FROM pg_roles WHERE rolname = current_user"
)


# A tombstone is sent only for a key that no longer exists: a live key's row replaces every older
# copy by its own version (FINAL keeps the newest version of a key across partitions), and a
# tombstone stamped after it (a key swap in one statement) must not delete it. The partition value
# only places the tombstone; one outside the warehouse's time range (the row was held back) is placed
# at the epoch.
TOMBSTONES_SQL = """
SELECT s.key_value,
       CASE WHEN s.partition_value >= '{lo}'::timestamptz AND s.partition_value < '{hi}'::timestamptz
            THEN s.partition_value ELSE '1970-01-01 00:00:00+00' END AT TIME ZONE 'UTC',
       (extract(epoch FROM s.deleted_at) * 1000000)::bigint, 1
FROM sync_tombstones s
WHERE s.table_name = %(t)s AND s.deleted_at >= coalesce(%(lo)s::timestamptz, '-infinity') AND s.deleted_at < %(hi)s
  AND NOT EXISTS (SELECT 1 FROM {table} r WHERE r.{key} = s.key_value)
ORDER BY s.deleted_at, s.key_value
"""
ROWS_PER_DAY_SQL = """
SELECT ({partition} AT TIME ZONE 'UTC')::date, count(*) FROM {table} WHERE {where} AND {keep} GROUP BY 1 ORDER BY 1
"""


@dataclass(frozen=True)
class Plan:
    """One table's sync, as derived from the Postgres catalog and the ClickHouse table."""

    table: SyncedTable
    columns: list[Column]
    times: TimeRange                  # what the warehouse's DateTime64 and Date32 hold
    changes: tuple[SchemaChange, ...] = ()  # what this sync changed in ClickHouse to follow Postgres

    @property
    def keep(self) -> str:
        """SQL true for the rows whose every value ClickHouse holds exactly (types.Column.reject)."""
        return keep_predicate(self.columns, self.times)

    @property
    def pullable(self) -> bool:
        """Whether ClickHouse's postgresql() reads every value of this table exactly. It does not for
        arrays (it infers their dimensions from the first row and fails on an empty or NULL one) nor for
        floats (libpqxx refuses subnormals such as 5e-324), and it would type a text column by its
        Postgres type (numeric(80, 2) has no ClickHouse Decimal): such tables move on the client stream
        whichever path is configured, so both paths give the same result."""
        return not any(c.pg_type in UNPULLABLE or c.as_text for c in self.columns)

    def select_list(self) -> str:
        return ", ".join(c.select_expression() for c in self.columns)

    def column_names(self) -> list[str]:
        """The columns a sync sends; ClickHouse computes `_version` from the cursor (its DEFAULT)."""
        return [c.name for c in self.columns]


def prepare(table: SyncedTable, postgres: PostgresResource, ch: Client) -> Plan:
    """Check types, create the ClickHouse table if new or follow Postgres' schema changes (evolve.py),
    and install the Postgres triggers.

    Everything here happens before a row moves, so a bad column stops the run with its name.
    Raises UnsupportedType, SchemaDrift (a change ClickHouse cannot follow) or SyncPermissionError.
    """
    with postgres.begin() as conn:
        if not conn.execute(CAN_SEE_SESSIONS_SQL).scalar_one():
            raise SyncPermissionError(
                "the sync's Postgres role must see every session's open transaction: "
                "GRANT pg_read_all_stats TO <sync role>"
            )
        columns = table.columns(conn)
        table.validate(columns)
        _install_triggers(conn, table)
    _drop_abandoned_staging(table, ch)
    ch.command(table.ddl(columns))
    existing = {name: (ch_type, default, comment) for name, ch_type, default, comment in ch.query(
        "SELECT name, type, default_expression, comment FROM system.columns WHERE database = currentDatabase() "
        "AND table = {t:String} ORDER BY position", parameters={"t": table.name}).result_rows}
    unmarked = [c for c in columns if c.name in existing and not existing[c.name][2]]
    if unmarked:  # made before columns carried their Postgres identity: mark them (metadata only)
        ch.command(f"ALTER TABLE {table.name} " + ", ".join(
            f"COMMENT COLUMN `{c.name}` '{c.identity}'" for c in unmarked))
    if not existing["_version"][1]:
        # Made before ClickHouse computed `_version` (a metadata change): without the DEFAULT, rows
        # sent without a version would be stored with 0 and lose to older rows.
        ch.command(f"ALTER TABLE {table.name} MODIFY COLUMN _version UInt64 DEFAULT {table.clickhouse_version()}")
    times = warehouse_time_range(ch)
    keys = frozenset((*(table.order_by or (table.key,)), table.partition_column))
    changes = apply_changes(postgres, ch, table.name, plan_changes(
        table.name, columns, {name: ch_type for name, (ch_type, _, _) in existing.items()}, keys,
        {name: comment for name, (_, _, comment) in existing.items() if name not in {c.name for c in unmarked}}))
    refused = [c for c in changes if c.change == "refused"]
    if refused:
        raise SchemaDrift(refused[0].detail)
    return Plan(table, columns, times, tuple(changes))


def _drop_abandoned_staging(table: SyncedTable, ch: Client) -> None:
    """A replace killed outright (no `finally`) leaves its staging table behind. The asset calls
    prepare() under the table's lock, so no staging table of this table is in use: each one is abandoned."""
    for (name,) in ch.query(
            "SELECT name FROM system.tables WHERE database = currentDatabase() AND startsWith(name, {p:String})",
            parameters={"p": f"{table.name}__staging_"}).result_rows:
        ch.command(f"DROP TABLE IF EXISTS `{name}`")


@contextmanager
def table_lock(table: SyncedTable, postgres: PostgresResource) -> Iterator[None]:
    """One sync of a table at a time, whatever the pool limit: a partition replace must never copy an
    older snapshot over rows an incremental run has just moved. Held on its own session."""
    with postgres.engine.connect() as conn:
        conn.execute(text("SELECT pg_advisory_lock(hashtext(:k))"), {"k": f"ops_sync:{table.name}"})
        conn.commit()  # a session lock outlives the transaction; an idle-in-transaction session would hold back the watermark
        try:
            yield
        finally:
            conn.execute(text("SELECT pg_advisory_unlock(hashtext(:k))"), {"k": f"ops_sync:{table.name}"})
            conn.commit()


def _install_triggers(conn, table: SyncedTable) -> None:
    """Create the sync's triggers once. Checking the catalog takes no lock; CREATE TRIGGER does, and
    would queue every writer behind any long transaction, so it runs only when a trigger is missing."""
    present = {r[0] for r in conn.execute(
        text("SELECT tgname FROM pg_trigger WHERE tgrelid = CAST(:t AS regclass) AND NOT tgisinternal"), {"t": table.name})}
    wanted = {
        f"{table.name}_touch": f"BEFORE INSERT OR UPDATE ON {table.name} FOR EACH ROW EXECUTE FUNCTION ops_touch_updated_at()",
        f"{table.name}_tombstone": f"AFTER DELETE ON {table.name} FOR EACH ROW "
                                   f"EXECUTE FUNCTION ops_sync_tombstone('{table.key}', '{table.partition_column}')",
        # A new key is a delete of the old one (and an insert of the new one, which the touch trigger stamps).
        f"{table.name}_rekeyed": f"AFTER UPDATE ON {table.name} FOR EACH ROW "
                                 f"EXECUTE FUNCTION ops_sync_tombstone('{table.key}', '{table.partition_column}')",
    }
    for name, definition in wanted.items():
        if name not in present:
            conn.execute(text(f"CREATE TRIGGER {name} {definition}"))


@dataclass(frozen=True)
class SyncResult:
    rows: int
    window_start: datetime | None
    window_end: datetime | None
    mode: str
    deletes: int = 0
    rejected: int = 0   # rows newly held back (sync_rejects)

    def metadata(self) -> dict:
        return {
            "mode": self.mode,
            "run_rows": self.rows,
            "window_start": self.window_start.isoformat() if self.window_start else "",
            "window_end": self.window_end.isoformat() if self.window_end else "",
            "deletes": self.deletes,
            "rejected": self.rejected,
        }


def incremental(plan: Plan, postgres: PostgresResource, ch: Client, pull_url: str | None = None,
                parallel_from_rows: int = PARALLEL_FROM_ROWS) -> SyncResult:
    """Copy rows and tombstones with watermark ≤ time < upper, then advance the watermark to upper.

    The window is written down (pending_upper) before any row moves. A run that dies after
    inserting and before advancing leaves the watermark where it was: the next run copies from there
    to a fresh upper bound (never below the dead run's, see SAFE_UPPER_SQL), so it repeats the dead
    run's rows and also moves everything committed since; FINAL sees one row per key regardless.
    (Unchanged rows of a one-stream window are sent in the same physical order, so ClickHouse's
    insert deduplication drops the repeated blocks.)
    """
    table = plan.table
    with postgres.begin() as conn:
        conn.execute(text("INSERT INTO sync_state (table_name) VALUES (:t) ON CONFLICT DO NOTHING"), {"t": table.name})
        state = conn.execute(
            text("SELECT watermark FROM sync_state WHERE table_name = :t FOR UPDATE"), {"t": table.name}
        ).one()
        upper = conn.execute(SAFE_UPPER_SQL).scalar_one()
        conn.execute(text("UPDATE sync_state SET pending_upper = :u WHERE table_name = :t"), {"u": upper, "t": table.name})
    window = {"lo": state.watermark, "hi": upper, "t": table.name}
    where = f"{table.cursor} >= coalesce(%(lo)s::timestamptz, '-infinity') AND {table.cursor} < %(hi)s"
    rejected, held, released = _record_rejects(plan, postgres, table.cursor, state.watermark, upper)
    ranges = key_ranges(postgres, table, where, window, parallel_from_rows)
    if _pulls(plan, pull_url, held):
        rows = pull_into(ch, table.name, plan, pull_url, table.cursor, state.watermark, upper, ranges, held)
    else:
        rows = stream_into(ch, table.name, plan, postgres, where, window, ranges)
    tombstones = TOMBSTONES_SQL.format(table=table.name, key=table.key, lo=plan.times.lo, hi=plan.times.hi)
    deletes = copy_into(ch, table.name, [table.key, table.partition_column, "_version", "_deleted"], postgres,
                        tombstones, window)
    rows += _copy_released(plan, postgres, ch, released)
    with postgres.begin() as conn:
        conn.execute(
            text(
                "UPDATE sync_state SET watermark = :u, pending_upper = NULL, rows_synced = rows_synced + :n,"
                " updated_at = now() WHERE table_name = :t AND pending_upper = :u"
            ),
            {"u": upper, "n": rows, "t": table.name},
        )
    return SyncResult(rows, state.watermark, upper, "incremental", deletes, rejected)


def replace_partitions(plan: Plan, postgres: PostgresResource, ch: Client, start: datetime, end: datetime,
                       pull_url: str | None = None, parallel_from_rows: int = PARALLEL_FROM_ROWS) -> SyncResult:
    """Make the days in [start, end) in ClickHouse an exact copy of Postgres, and touch no other day.

    The days' rows go to a staging table. Every ClickHouse partition they touch (a month; a day in
    tables made before partitions were monthly) is completed there with the warehouse's own rows of
    that partition outside the days, then swapped in whole: REPLACE PARTITION is atomic, so readers
    never see half a month, and a run that dies before a swap has changed nothing in that partition.
    """
    table = plan.table
    rejected, held, released = _record_rejects(plan, postgres, table.partition_column, start, end)
    staging = f"{table.name}__staging_{uuid.uuid4().hex[:12]}"
    ch.command(f"CREATE TABLE {staging} AS {table.name}")
    try:
        where = f"{table.partition_column} >= %(lo)s AND {table.partition_column} < %(hi)s"
        window = {"lo": start, "hi": end}
        ranges = key_ranges(postgres, table, where, window, parallel_from_rows)
        if _pulls(plan, pull_url, held):
            rows = pull_into(ch, staging, plan, pull_url, table.partition_column, start, end, ranges, held)
        else:
            rows = stream_into(ch, staging, plan, postgres, where, window, ranges)
        in_days = (f"`{table.partition_column}` >= {{lo:DateTime64(6, 'UTC')}} "
                   f"AND `{table.partition_column}` < {{hi:DateTime64(6, 'UTC')}}")
        touched = _partitions(ch, staging) | _partitions(ch, table.name, in_days, window)
        for partition in sorted(touched):
            # Tombstones inside the days stay: one may stand for a row that moved here from another
            # partition before it was deleted, whose older copy lives on elsewhere.
            ch.command(f"INSERT INTO {staging} SELECT * FROM {table.name} "
                       f"WHERE _partition_id = {{p:String}} AND (NOT ({in_days}) OR _deleted = 1)",
                       parameters=window | {"p": partition},
                       settings={"insert_deduplicate": 0})
        filled = _partitions(ch, staging)
        for partition in sorted(touched):
            action = f"REPLACE PARTITION ID '{partition}' FROM {staging}" if partition in filled \
                else f"DROP PARTITION ID '{partition}'"
            ch.command(f"ALTER TABLE {table.name} {action}")
    finally:
        ch.command(f"DROP TABLE IF EXISTS {staging}")
    rows += _copy_released(plan, postgres, ch, released)
    return SyncResult(rows, start, end, "replace", rejected=rejected)


def _record_rejects(plan: Plan, postgres: PostgresResource, column: str, lo: datetime | None,
                    hi: datetime) -> tuple[int, list[int], list[int]]:
    """Quarantine the window's rows ClickHouse cannot hold before any row moves: (newly held back, every
    held-back key of the window, keys released without a write, see record_rejects). The window's rows
    cannot change meanwhile: a write moves a row past `hi`."""
    with postgres.begin() as conn:
        return record_rejects(conn, plan.table, plan.columns, plan.times, _between(column), {"lo": lo, "hi": hi})


def _between(column: str) -> str:
    """lo ≤ column < hi with SQLAlchemy parameters :lo (None: no lower bound) and :hi."""
    return f"{column} >= coalesce(CAST(:lo AS timestamptz), '-infinity') AND {column} < :hi"


def _copy_released(plan: Plan, postgres: PostgresResource, ch: Client, keys: list[int]) -> int:
    """Rows whose reject cleared without a write to them (their column was dropped or became a text
    column, the warehouse's time range widened): no window would bring them, so they move by key."""
    if not keys:
        return 0
    query = f"SELECT {plan.select_list()} FROM {plan.table.name} WHERE {plan.table.key} = ANY(%(keys)s) AND {plan.keep}"
    return copy_into(ch, plan.table.name, plan.column_names(), postgres, query, {"keys": keys})


def _pulls(plan: Plan, pull_url: str | None, held: list[int]) -> bool:
    """The server pull, where configured and exact for this table and window (see Plan.pullable)."""
    return bool(pull_url) and plan.pullable and len(held) <= MAX_PULL_EXCLUDED_KEYS


def data_extent(plan: Plan, postgres: PostgresResource) -> tuple[datetime | None, datetime | None]:
    """[first, last] partition value of the rows ClickHouse can hold, as a half-open window (None: no rows)."""
    column = plan.table.partition_column
    with postgres.begin() as conn:
        return tuple(conn.execute(text(
            f"SELECT min({column}), max({column}) + interval '1 microsecond' FROM {plan.table.name} "
            f"WHERE {plan.keep}")).one())


def rows_per_day(plan: Plan, postgres: PostgresResource, column: str, lo: datetime | None, hi: datetime) -> dict:
    """{UTC day of the partition column: rows} of the rows moved with lo ≤ `column` < hi: what a run
    moved, day by day (the asset reports each day as its own partition)."""
    where = _between(column)
    with postgres.begin() as conn:
        return dict(conn.execute(text(ROWS_PER_DAY_SQL.format(
            partition=plan.table.partition_column, table=plan.table.name, where=where, keep=plan.keep)),
            {"lo": lo, "hi": hi}).all())


def _partitions(ch: Client, table: str, where: str = "1", params: dict | None = None) -> set[str]:
    return {r[0] for r in ch.query(f"SELECT DISTINCT _partition_id FROM {table} WHERE {where}",
                                   parameters=params or {}).result_rows}


def stream_into(ch: Client, target: str, plan: Plan, postgres: PostgresResource, where: str, params: dict,
                ranges: list[Bounds]) -> int:
    """The client-side path: the window's rows, one COPY stream per key range, into one INSERT."""
    queries = [(f"SELECT {plan.select_list()} FROM {plan.table.name} WHERE {where} AND {plan.keep}"
                 f"{in_range(plan.table.key, r)}", params)
               for r in ranges]
    return copy_streams(ch, target, plan.column_names(), postgres, queries,
                        PARALLEL_SETTINGS if len(ranges) > 1 else INSERT_SETTINGS)


def copy_into(ch: Client, target: str, columns: list[str], postgres: PostgresResource, query: str, params: dict) -> int:
    """Stream `query`'s rows from Postgres into ClickHouse table `target` (one stream); return the row count."""
    return copy_streams(ch, target, columns, postgres, [(query, params)], INSERT_SETTINGS)


Bounds = tuple[int | None, int | None]  # a key range [lo, hi); None is open-ended
WHOLE: list[Bounds] = [(None, None)]


def key_ranges(postgres: PostgresResource, table: SyncedTable, where: str, params: dict,
               parallel_from_rows: int = PARALLEL_FROM_ROWS) -> list[Bounds]:
    """Split the rows matching `where` into STREAMS key ranges, or one range when Postgres estimates
    the window too small for parallel streams to pay. Both probes are cheap: EXPLAIN only plans, and
    the table's min/max key are the two ends of its primary key's index. (The window's own min/max
    could need a scan; a window bunched in one range just leaves the other stream idle.)"""
    with postgres.raw() as conn, ClientCursor(conn) as cur:
        plan = cur.execute(f"EXPLAIN (FORMAT JSON) SELECT 1 FROM {table.name} WHERE {where}", params).fetchone()[0]
        if plan[0]["Plan"]["Plan Rows"] < parallel_from_rows:
            return WHOLE
        lo, hi = cur.execute(f"SELECT min({table.key}), max({table.key}) FROM {table.name}").fetchone()
    if lo is None or hi - lo < STREAMS:
        return WHOLE
    cuts = [None, *(lo + (hi - lo + 1) * i // STREAMS for i in range(1, STREAMS)), None]
    return list(zip(cuts, cuts[1:], strict=False))


def in_range(key: str, bounds: Bounds) -> str:
    """" AND <key> >= lo AND <key> < hi" (integers only, so it reads the same in Postgres and ClickHouse)."""
    lo, hi = bounds
    return (f" AND {key} >= {int(lo)}" if lo is not None else "") + (f" AND {key} < {int(hi)}" if hi is not None else "")


def pull_into(ch: Client, target: str, plan: Plan, pull_url: str, column: str, lo: datetime | None, hi: datetime,
              ranges: list[Bounds] = WHOLE, held: list[int] = ()) -> int:
    """The server-side path: ClickHouse reads Postgres itself through postgresql(), so no row passes
    through Python. The window predicate (and each stream's key range) is pushed down to Postgres
    and its indexes; several ranges are read in parallel (UNION ALL). Needs ClickHouse to reach
    Postgres over the network; the client-side stream (copy_into) is the path when it cannot. The
    window's held-back keys are left out by a `NOT IN` that is pushed down too, so Postgres never sends
    a value ClickHouse cannot hold."""
    names = ", ".join(f"`{c.name}`" for c in plan.columns)
    where = f"`{column}` < {{hi:DateTime64(6, 'UTC')}}" + (f" AND `{column}` >= {{lo:DateTime64(6, 'UTC')}}" if lo else "")
    source = postgres_source(pull_url, plan.table.name)
    if held:
        where += f" AND `{plan.table.key}` NOT IN ({', '.join(str(int(k)) for k in held)})"
    selects = " UNION ALL ".join(
        f"SELECT {names} FROM {source} WHERE {where}{in_range(f'`{plan.table.key}`', r)}"
        for r in ranges)
    params = {"lo": lo, "hi": hi}
    ch.command(f"INSERT INTO {target} ({names}) {selects}", parameters=params,
               settings=PARALLEL_PULL_SETTINGS if len(ranges) > 1 else INSERT_SETTINGS)
    # chDB reports no row counts for INSERT ... SELECT, and a second read through postgresql() would
    # cost as much as the first: count the window in ClickHouse (a run repeating a window after a
    # crash counts the rows of both attempts; FINAL would be exact but reads the whole table).
    return ch.query(f"SELECT count() FROM {target} WHERE {where}", parameters=params).result_rows[0][0]


def postgres_source(url: str, table: str) -> str:
    """postgresql('host:port', 'db', 'table', 'user', 'password'). ClickHouse masks the password in its logs."""
    from sqlalchemy.engine import make_url

    u = make_url(url)

    def quoted(value) -> str:
        return "'" + str(value or "").replace("\\", "\\\\").replace("'", "\\'") + "'"

    return (f"postgresql({quoted(f'{u.host}:{u.port or 5432}')}, {quoted(u.database)}, {quoted(table)}, "
            f"{quoted(u.username)}, {quoted(u.password)})")

