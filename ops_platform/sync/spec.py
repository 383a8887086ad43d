"""What is synced. Adding a table is one SyncedTable entry: its ClickHouse table (columns and types
from the Postgres catalog), triggers and Dagster asset follow from it."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from sqlalchemy import Connection

from ops_platform.sync.types import Column, UnsupportedType, postgres_columns

INTEGER_TYPES = {"smallint", "integer", "bigint"}


@dataclass(frozen=True)
class SyncedTable:
    name: str                       # same name in Postgres and ClickHouse
    partition_column: str           # immutable timestamp: daily partitions in Dagster, monthly in ClickHouse
    key: str = "id"                 # integer primary key: one row per key after FINAL
    cursor: str = "updated_at"      # stamped by ops_touch_updated_at()
    order_by: tuple[str, ...] = field(default=())  # ClickHouse ORDER BY; (key,) when empty
    text_columns: tuple[str, ...] = field(default=())  # moved as their exact Postgres text (e.g. numeric(80, 2))

    def columns(self, conn: Connection) -> list[Column]:
        """The table's columns from the Postgres catalog, as this table syncs them."""
        columns = postgres_columns(conn, self.name)
        unknown = set(self.text_columns) - {c.name for c in columns}
        if unknown:
            raise UnsupportedType(f"{self.name}: text_columns names no such column: {sorted(unknown)}")
        return [replace(c, as_text=True) if c.name in self.text_columns else c for c in columns]

    def validate(self, columns: list[Column]) -> None:
        by_name = {c.name: c for c in columns}
        needs = {self.key: INTEGER_TYPES, self.cursor: {"timestamp with time zone"},
                 self.partition_column: {"timestamp with time zone"}}
        for name, allowed in needs.items():
            column = by_name.get(name)
            if column is None or column.pg_type not in allowed or column.nullable:
                raise UnsupportedType(f"{self.name}.{name} must be a NOT NULL {' or '.join(sorted(allowed))} column")
        for column in columns:
            column.clickhouse_type(self.name)  # raises, naming the column, before any row moves

    def ddl(self, columns: list[Column]) -> str:
        body = ",\n    ".join(f"`{c.name}` {c.clickhouse_type(self.name)} COMMENT '{c.identity}'" for c in columns)
        order = ", ".join(self.order_by or (self.key,))
        return (
            f"CREATE TABLE IF NOT EXISTS {self.name} (\n    {body},\n    _version UInt64 DEFAULT {self.clickhouse_version()},\n"
            f"    _deleted UInt8 DEFAULT 0\n)\n"
            f"ENGINE = ReplacingMergeTree(_version, _deleted)\nPARTITION BY toYYYYMM({self.partition_column})\n"
            f"ORDER BY ({order})\nSETTINGS non_replicated_deduplication_window = 1000"
        )

    def version_expression(self) -> str:
        """A row's version in Postgres: its cursor in microseconds (the parity check computes it here)."""
        return f"(extract(epoch FROM {self.cursor}) * 1000000)::bigint"

    def clickhouse_version(self) -> str:
        """The same version computed by ClickHouse as rows arrive: Postgres' numeric arithmetic for it
        cost about a fifth of the COPY's time."""
        return f"toUInt64(toUnixTimestamp64Micro(`{self.cursor}`))"


SYNCED_TABLES = (
    SyncedTable("builds", partition_column="started_at"),
    SyncedTable("tasks", partition_column="created_at"),
    SyncedTable("executions", partition_column="ts"),
    SyncedTable("agent_activity_feed", partition_column="ts"),
    SyncedTable("campaigns", partition_column="created_at"),
    SyncedTable("volunteer_activities", partition_column="occurred_at"),
)
BUILDS = SYNCED_TABLES[0]
