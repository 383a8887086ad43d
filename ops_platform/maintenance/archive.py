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

from ops_platform.resources.postgres import PostgresResource
from ops_platform.sync.engine import copy_into


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
            bounds = conn.execute(
                text(f"SELECT min(id), max(id), count(*) FROM (SELECT id FROM {spec.table} "
                     f"WHERE {spec.age_column} < :cutoff ORDER BY id LIMIT :n) batch"),
                {"cutoff": cutoff, "n": batch_rows},
            ).one()
        if not bounds[2]:
            return moved
        lo, hi, count = bounds
        batch = f"id BETWEEN %(lo)s AND %(hi)s AND {spec.age_column} < %(cutoff)s"
        params = {"lo": lo, "hi": hi, "cutoff": cutoff}
        copy_into(ch, spec.archive, list(spec.columns), postgres,
                  f"SELECT {', '.join(spec.columns)} FROM {spec.table} WHERE {batch} ORDER BY id", params)
        archived = ch.query(
            f"SELECT count(), sum(id) FROM (SELECT id FROM {spec.archive} FINAL WHERE id BETWEEN {lo} AND {hi} "
            f"AND {spec.age_column} < parseDateTime64BestEffort('{cutoff.isoformat()}', 6, 'UTC'))"
        ).result_rows[0]
        with postgres.begin() as conn:
            expected = conn.execute(
                text(f"SELECT count(*), sum(id) FROM {spec.table} WHERE id BETWEEN :lo AND :hi AND {spec.age_column} < :cutoff"),
                params,
            ).one()
            if (int(archived[0]), int(archived[1] or 0)) != (int(expected[0]), int(expected[1] or 0)):
                raise ArchiveMismatch(
                    f"{spec.archive} holds {archived[0]} rows of ids {lo}..{hi}, Postgres {expected[0]}; nothing deleted"
                )
            conn.execute(text("SET LOCAL ops.retention = 'on'"))  # archived, not a delete to propagate
            deleted = conn.execute(
                text(f"DELETE FROM {spec.table} WHERE id BETWEEN :lo AND :hi AND {spec.age_column} < :cutoff"), params
            ).rowcount
        moved += deleted
