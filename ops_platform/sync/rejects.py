"""Rows held back because ClickHouse cannot hold one of their values exactly (the value policy in types.py).

Before a window moves, the sync records its rows that hold such a value here (one open row per
table, key and column) and resolves the ones that were fixed or deleted in Postgres; both paths
then leave those rows out (the client stream by `keep_predicate`, the server pull by their keys).
No database object of ours depends on the table's columns, so the application's migrations are
never blocked by the sync. The `no_rejected_rows` check on the table's asset turns red
while any is open, and a notification names them.
"""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import Connection, text

from ops_platform.sync.spec import SyncedTable
from ops_platform.sync.types import Column, TimeRange

VALUE_TEXT_LIMIT = 200  # characters of a rejected value kept for the person who fixes it

OPEN_REJECTS_SQL = text("""
SELECT key_value, column_name, value, reason FROM sync_rejects
WHERE table_name = :table AND resolved_at IS NULL ORDER BY first_seen_at, key_value, column_name LIMIT :limit
""")
COUNT_OPEN_SQL = text("SELECT count(*) FROM sync_rejects WHERE table_name = :table AND resolved_at IS NULL")
# The window's rows failing the keep predicate, one per bad column: (key, column, value text, reason).
# One pass over the window: only rows failing the keep predicate reach the per-column checks.
REJECTED_ROWS_SQL = ("SELECT t.{key}, c._ops_col, c._ops_val, c._ops_why FROM {table} t "
                     "CROSS JOIN LATERAL (VALUES {checks}) AS c (_ops_col, _ops_val, _ops_why, _ops_bad) "
                     "WHERE {window} AND NOT ({keep}) AND c._ops_bad")
# One open reject per table, key and column; `xmax = 0` is true for a row inserted here (newly held back).
RECORD_REJECTS_SQL = """
INSERT INTO sync_rejects (table_name, key_value, column_name, value, reason)
SELECT :table, k, col, v, why FROM ({found}) AS r (k, col, v, why)
ON CONFLICT (table_name, key_value, column_name) WHERE resolved_at IS NULL
DO UPDATE SET value = EXCLUDED.value, last_seen_at = now()
RETURNING key_value, (xmax = 0)
"""
# Open rejects whose row was deleted or no longer fails its column's check.
RESOLVE_FIXED_SQL = """
UPDATE sync_rejects r SET resolved_at = now()
WHERE r.table_name = :table AND r.resolved_at IS NULL
  AND NOT EXISTS (SELECT 1 FROM {table} WHERE {key} = r.key_value AND ({still_bad}))
RETURNING r.key_value
"""
RESOLVE_ALL_SQL = text("UPDATE sync_rejects SET resolved_at = now() WHERE table_name = :table "
                       "AND resolved_at IS NULL RETURNING key_value")


@dataclass(frozen=True)
class Reject:
    key: int
    column: str
    value: str | None
    reason: str


def keep_predicate(columns: list[Column], times: TimeRange) -> str:
    """SQL true for the rows whose every value ClickHouse holds exactly."""
    return " AND ".join(f"NOT {r[0]}" for c in columns if (r := c.reject(times))) or "true"


def record_rejects(conn: Connection, table: SyncedTable, columns: list[Column], times: TimeRange,
                   window: str, params: dict) -> tuple[int, list[int]]:
    """Quarantine the window's rows ClickHouse cannot hold; resolve open rejects whose row was fixed or
    deleted. `window` is a SQL predicate on the table (with :named params). Returns (how many rows were
    newly held back, the keys of every held-back row in the window, the keys whose rejects were resolved
    here: fixed without a write to the row, e.g. its column was dropped, they need moving by key; a
    row fixed by a write moves with its window anyway, and moving it twice is harmless)."""
    tests = [(c, *r) for c in columns if (r := c.reject(times))]
    if not tests:
        return 0, [], _resolve_all(conn, table.name)
    checks = ", ".join(f"('{c.name}', left({c.name}::text, {VALUE_TEXT_LIMIT}), {_literal(reason)}, {test})"
                       for c, test, reason in tests)
    found = REJECTED_ROWS_SQL.format(key=table.key, table=table.name, checks=checks, window=window,
                                     keep=keep_predicate(columns, times))
    new = conn.execute(text(RECORD_REJECTS_SQL.format(found=found)), params | {"table": table.name}).all()
    still_bad = " OR ".join(f"(r.column_name = '{c.name}' AND {test})" for c, test, _ in tests)
    resolved = conn.execute(text(RESOLVE_FIXED_SQL.format(table=table.name, key=table.key, still_bad=still_bad)),
                            {"table": table.name}).scalars().all()
    held = {key for key, _ in new}
    return len({key for key, inserted in new if inserted}), sorted(held), sorted(set(resolved) - held)


def _resolve_all(conn: Connection, table: str) -> list[int]:
    """No column can hold a reject any more (the last such column was dropped or became text)."""
    return conn.execute(RESOLVE_ALL_SQL, {"table": table}).scalars().all()


def _literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def open_rejects(conn: Connection, table: str, limit: int = 20) -> tuple[int, list[Reject]]:
    """(how many rows of `table` are held back, the oldest `limit` of them)."""
    count = conn.execute(COUNT_OPEN_SQL, {"table": table}).scalar_one()
    rows = conn.execute(OPEN_REJECTS_SQL, {"table": table, "limit": limit}).all()
    return count, [Reject(*r) for r in rows]
