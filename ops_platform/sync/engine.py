"""The two ways a synced table moves: `incremental` (changed rows since the watermark) and
`replace_partitions` (an exact copy of the requested days).

Rows stream from Postgres with COPY (text format) straight into ClickHouse as TabSeparated: the
two formats share their escaping, so jsonb text, NULLs and timestamps arrive byte for byte and
memory stays bounded by one chunk.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta

from clickhouse_connect.driver.client import Client
from psycopg import ClientCursor
from sqlalchemy import text

from ops_platform.resources.postgres import PostgresResource
from ops_platform.sync.spec import SyncedTable

CHUNK_BYTES = 32 * 1024 * 1024
INSERT_SETTINGS = {"date_time_input_format": "best_effort"}

# The newest instant before which every transaction has ended: rows stamped earlier are committed
# (updated_at is the writer's transaction start), so a watermark never skips a late commit.
SAFE_UPPER_SQL = text("""
SELECT least(clock_timestamp(), coalesce(min(xact_start), clock_timestamp()))
FROM pg_stat_activity
WHERE datname = current_database() AND backend_type = 'client backend'
  AND pid <> pg_backend_pid() AND xact_start IS NOT NULL AND state <> 'idle'
""")


@dataclass(frozen=True)
class SyncResult:
    rows: int
    window_start: datetime | None
    window_end: datetime | None
    mode: str

    def metadata(self) -> dict:
        return {
            "mode": self.mode,
            "rows": self.rows,
            "window_start": self.window_start.isoformat() if self.window_start else "",
            "window_end": self.window_end.isoformat() if self.window_end else "",
        }


def incremental(table: SyncedTable, postgres: PostgresResource, ch: Client) -> SyncResult:
    """Copy rows with watermark ≤ cursor < upper, then advance the watermark to upper.

    The window is written down (pending_upper) before any row moves; a run that dies after
    inserting and before advancing repeats the same window in the same order, so ClickHouse's
    insert deduplication drops the repeated blocks and FINAL sees one row per key regardless.
    """
    with postgres.begin() as conn:
        conn.execute(text("INSERT INTO sync_state (table_name) VALUES (:t) ON CONFLICT DO NOTHING"), {"t": table.name})
        state = conn.execute(
            text("SELECT watermark, pending_upper FROM sync_state WHERE table_name = :t FOR UPDATE"), {"t": table.name}
        ).one()
        upper = state.pending_upper or conn.execute(SAFE_UPPER_SQL).scalar_one()
        conn.execute(text("UPDATE sync_state SET pending_upper = :u WHERE table_name = :t"), {"u": upper, "t": table.name})
    query = (
        f"SELECT {table.select_list()} FROM {table.name} "
        f"WHERE {table.cursor} >= coalesce(%(lo)s::timestamptz, '-infinity') AND {table.cursor} < %(hi)s "
        f"ORDER BY {table.cursor}, {table.key}"
    )
    rows = copy_into(ch, table.name, table.column_names(), postgres, query, {"lo": state.watermark, "hi": upper})
    with postgres.begin() as conn:
        conn.execute(
            text(
                "UPDATE sync_state SET watermark = :u, pending_upper = NULL, rows_synced = rows_synced + :n,"
                " updated_at = now() WHERE table_name = :t"
            ),
            {"u": upper, "n": rows, "t": table.name},
        )
    return SyncResult(rows, state.watermark, upper, "incremental")


def replace_partitions(
    table: SyncedTable, postgres: PostgresResource, ch: Client, start: datetime, end: datetime
) -> SyncResult:
    """Make the days in [start, end) in ClickHouse an exact copy of Postgres, and touch no other day."""
    staging = f"{table.name}__staging_{uuid.uuid4().hex[:12]}"
    ch.command(f"CREATE TABLE {staging} AS {table.name}")
    try:
        query = (
            f"SELECT {table.select_list()} FROM {table.name} "
            f"WHERE {table.partition_column} >= %(lo)s AND {table.partition_column} < %(hi)s "
            f"ORDER BY {table.key}"
        )
        rows = copy_into(ch, staging, table.column_names(), postgres, query, {"lo": start, "hi": end})
        filled = {r[0] for r in ch.query(f"SELECT DISTINCT _partition_id FROM {staging}").result_rows}
        for day in _days(start, end):
            partition = day.strftime("%Y%m%d")
            if partition in filled:
                ch.command(f"ALTER TABLE {table.name} REPLACE PARTITION ID '{partition}' FROM {staging}")
            else:
                ch.command(f"ALTER TABLE {table.name} DROP PARTITION ID '{partition}'")
    finally:
        ch.command(f"DROP TABLE IF EXISTS {staging}")
    return SyncResult(rows, start, end, "replace")


def copy_into(ch: Client, target: str, columns: list[str], postgres: PostgresResource, query: str, params: dict) -> int:
    """Stream `query`'s rows from Postgres into ClickHouse table `target`; return the row count."""
    rows = 0
    with postgres.raw() as conn:
        conn.execute("SET TIME ZONE 'UTC'")
        with ClientCursor(conn) as cur:
            copy_sql = cur.mogrify(query, params)
            with cur.copy(f"COPY ({copy_sql}) TO STDOUT") as copy:
                for chunk, count in _chunks(copy):
                    ch.raw_insert(target, columns, insert_block=chunk, fmt="TabSeparated",
                                  settings=INSERT_SETTINGS)
                    rows += count
    return rows


def _chunks(copy) -> Iterator[tuple[bytes, int]]:
    """Whole rows (Postgres sends one COPY message per row) grouped into ~CHUNK_BYTES blocks."""
    parts: list[bytes] = []
    size = 0
    for row in copy:
        parts.append(bytes(row))
        size += len(row)
        if size >= CHUNK_BYTES:
            yield b"".join(parts), len(parts)
            parts, size = [], 0
    if parts:
        yield b"".join(parts), len(parts)


def _days(start: datetime, end: datetime) -> Iterator[datetime]:
    day = start
    while day < end:
        yield day
        day += timedelta(days=1)
