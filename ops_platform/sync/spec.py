"""What a synced table is. Adding a table is one SyncedTable entry (and its ClickHouse DDL)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class SyncedTable:
    name: str                 # same name in Postgres and ClickHouse
    key: str                  # primary key: one row per key after FINAL
    cursor: str               # updated_at-style column maintained by ops_touch_updated_at()
    partition_column: str     # immutable timestamp: daily partitions in ClickHouse and Dagster
    columns: tuple[str, ...]  # Postgres select expressions, in ClickHouse column order (without _version)

    def select_list(self) -> str:
        version = f"(extract(epoch FROM {self.cursor}) * 1000000)::bigint"
        return ", ".join([*self.columns, version])

    def column_names(self) -> list[str]:
        return [c.split("::")[0] for c in self.columns] + ["_version"]


BUILDS = SyncedTable(
    name="builds",
    key="id",
    cursor="updated_at",
    partition_column="started_at",
    columns=("id", "prd_name", "status", "started_at", "completed_at", "duration_ms", "error", "cost_usd",
             "meta::text", "updated_at"),
)

SYNCED_TABLES = (BUILDS,)
