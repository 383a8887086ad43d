"""Versioned SQL migrations for Postgres and ClickHouse, applied in order, each at most once.

Files are `NNNN_name.sql` under schema/postgres and schema/warehouse. An applied file whose text
changed is an error (edit by adding a new file, never by rewriting history).
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WarehouseResource

SCHEMA_DIR = Path(__file__).parent
_ADVISORY_LOCK = 7_311_002  # any constant: serialises concurrent migrators

POSTGRES_LOCK_SQL = text("SELECT pg_advisory_xact_lock(:k)")
POSTGRES_MIGRATIONS_TABLE_SQL = text(
    "CREATE TABLE IF NOT EXISTS schema_migrations (version int PRIMARY KEY, name text NOT NULL,"
    " checksum text NOT NULL, applied_at timestamptz NOT NULL DEFAULT now())"
)
POSTGRES_APPLIED_SQL = text("SELECT version, checksum FROM schema_migrations")
POSTGRES_RECORD_SQL = text("INSERT INTO schema_migrations (version, name, checksum) VALUES (:v, :n, :c)")
WAREHOUSE_MIGRATIONS_TABLE_SQL = (
    "CREATE TABLE IF NOT EXISTS schema_migrations (version UInt32, name String, checksum String,"
    " applied_at DateTime DEFAULT now()) ENGINE = ReplacingMergeTree ORDER BY version"
)
WAREHOUSE_APPLIED_SQL = "SELECT version, checksum FROM schema_migrations FINAL"


class MigrationError(RuntimeError):
    pass


@dataclass(frozen=True)
class Migration:
    version: int
    name: str
    sql: str

    @property
    def checksum(self) -> str:
        return hashlib.sha256(self.sql.encode()).hexdigest()


def load(kind: str) -> list[Migration]:
    found = []
    for path in sorted((SCHEMA_DIR / kind).glob("*.sql")):
        match = re.fullmatch(r"(\d{4})_(\w+)\.sql", path.name)
        if not match:
            raise MigrationError(f"{path.name}: migration files are named NNNN_name.sql")
        found.append(Migration(int(match[1]), match[2], path.read_text()))
    return found


def migrate_postgres(postgres: PostgresResource) -> list[str]:
    """Apply pending Postgres migrations; return the names applied."""
    applied_now = []
    with postgres.begin() as conn:
        conn.execute(POSTGRES_LOCK_SQL, {"k": _ADVISORY_LOCK})
        conn.execute(POSTGRES_MIGRATIONS_TABLE_SQL)
        done = dict(conn.execute(POSTGRES_APPLIED_SQL).all())
        for m in load("postgres"):
            if m.version in done:
                if done[m.version] != m.checksum:
                    raise MigrationError(
                        f"postgres migration {m.version:04d}_{m.name} changed after it was applied; "
                        "add a new migration instead"
                    )
                continue
            conn.exec_driver_sql(m.sql)
            conn.execute(POSTGRES_RECORD_SQL, {"v": m.version, "n": m.name, "c": m.checksum})
            applied_now.append(f"{m.version:04d}_{m.name}")
    return applied_now


def migrate_warehouse(warehouse: WarehouseResource) -> list[str]:
    """Apply pending ClickHouse migrations (one statement per `;`-terminated block)."""
    applied_now = []
    with warehouse.client() as ch:
        ch.command(WAREHOUSE_MIGRATIONS_TABLE_SQL)
        done = dict(ch.query(WAREHOUSE_APPLIED_SQL).result_rows)
        for m in load("warehouse"):
            if m.version in done:
                if done[m.version] != m.checksum:
                    raise MigrationError(f"warehouse migration {m.version:04d}_{m.name} changed after it was applied")
                continue
            for statement in _statements(m.sql):
                ch.command(statement)
            ch.insert("schema_migrations", [[m.version, m.name, m.checksum]], column_names=["version", "name", "checksum"])
            applied_now.append(f"{m.version:04d}_{m.name}")
    return applied_now


def _statements(sql: str) -> list[str]:
    without_comments = "\n".join(line for line in sql.splitlines() if not line.strip().startswith("--"))
    return [s.strip() for s in without_comments.split(";") if s.strip()]
