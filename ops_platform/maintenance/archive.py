"""Move old rows from Postgres to a ClickHouse archive table without ever holding them in one place only.

Each batch is copied, verified in ClickHouse (same ids, same count), and only then deleted from
Postgres. A run that dies at any point leaves every row in Postgres, in ClickHouse, or in both;
the archive is a ReplacingMergeTree on id, so copying a batch twice still archives it once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from clickhouse_connect.driver.client import Client
from sqlalchemy import text

from ops_platform.maintenance.retention import RETENTION_MODE_SQL
from ops_platform.resources.postgres import PostgresResource
from ops_platform.sync.engine import copy_into

# A batch: up to `batch_rows` rows past the cutoff, lowest ids first, as an id range.
BATCH_BOUNDS_SQL = ("SELECT min(id), max(id), count(*) FROM (SELECT id FROM {table} "
                    "WHERE {age_column} < :cutoff ORDER BY id LIMIT :n) batch")
BATCH_ROWS_SQL = ("SELECT {columns} FROM {table} "
                  "WHERE id BETWEEN %(lo)s AND %(hi)s AND {age_column} < %(cutoff)s ORDER BY id")
# (count, sum of ids) of the batch on each side: equal means ClickHouse holds exactly the batch.
ARCHIVED_BATCH_SQL = ("SELECT count(), sum(id) FROM (SELECT id FROM {archive} FINAL WHERE id BETWEEN {lo} AND {hi} "
                      "AND {age_column} < parseDateTime64BestEffort('{cutoff}', 6, 'UTC'))")
POSTGRES_BATCH_SQL = "SELECT count(*), sum(id) FROM {table} WHERE id BETWEEN :lo AND :hi AND {age_column} < :cutoff"
DELETE_BATCH_SQL = "DELETE FROM {table} WHERE id BETWEEN :lo AND :hi AND {age_column} < :cutoff"


class ArchiveMismatch(RuntimeError):
    """ClickHouse does not hold exactly the rows about to be deleted: nothing was deleted."""


@dataclass(frozen=True)
class ArchiveSpec:
    table: str           # Postgres table, with a bigint `id`
    archive: str         # ClickHouse table
    columns: tuple[str, ...]
    age_column: str


EXECUTIONS = ArchiveSpec("executions", "executions_archive", ("id", "agent_name", "task_id", "duration_ms", "ts"), "ts")


def move_to_warehouse(spec: ArchiveSpec, postgres: PostgresResource, ch: Client, cutoff: datetime,
                      batch_rows: int = 200_000) -> int:
    moved = 0
    while True:
        with postgres.begin() as conn:
            bounds = conn.execute(text(BATCH_BOUNDS_SQL.format(table=spec.table, age_column=spec.age_column)),
                                  {"cutoff": cutoff, "n": batch_rows}).one()
        if not bounds[2]:
            return moved
        lo, hi, count = bounds
        params = {"lo": lo, "hi": hi, "cutoff": cutoff}
        copy_into(ch, spec.archive, list(spec.columns), postgres, BATCH_ROWS_SQL.format(
            columns=", ".join(spec.columns), table=spec.table, age_column=spec.age_column), params)
        archived = ch.query(ARCHIVED_BATCH_SQL.format(
            archive=spec.archive, lo=lo, hi=hi, age_column=spec.age_column, cutoff=cutoff.isoformat())).result_rows[0]
        with postgres.begin() as conn:
            expected = conn.execute(text(POSTGRES_BATCH_SQL.format(table=spec.table, age_column=spec.age_column)),
                                    params).one()
            if (int(archived[0]), int(archived[1] or 0)) != (int(expected[0]), int(expected[1] or 0)):
                raise ArchiveMismatch(
                    f"{spec.archive} holds {archived[0]} rows of ids {lo}..{hi}, Postgres {expected[0]}; nothing deleted"
                )
            conn.execute(RETENTION_MODE_SQL)  # archived, not a delete to propagate
            deleted = conn.execute(text(DELETE_BATCH_SQL.format(table=spec.table, age_column=spec.age_column)),
                                   params).rowcount
        moved += deleted
