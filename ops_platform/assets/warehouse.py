"""One asset per synced table: `warehouse/<table>`, daily-partitioned, made by one factory.

- Scheduled runs (mode=incremental, every 15 minutes) move the rows changed since the watermark.
- Any other run (a backfill from the UI or CLI, default mode=replace) makes the requested days an
  exact copy of Postgres, in a single run however many days (BackfillPolicy.single_run).
"""

from typing import Literal

import dagster as dg
from sqlalchemy import text

from ops_platform.framework.controls import WRITE_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WAREHOUSE_POOL, WarehouseResource
from ops_platform.sync import engine
from ops_platform.sync.spec import SYNCED_TABLES, SyncedTable

DAILY = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_offset=1)


class SyncConfig(dg.Config):
    mode: Literal["replace", "incremental"] = "replace"


def synced_table_asset(table: SyncedTable) -> dg.AssetsDefinition:
    @dg.asset(
        key=["warehouse", table.name],
        group_name="warehouse",
        kinds={"clickhouse", "postgres"},
        deps=[["postgres", table.name]],
        partitions_def=DAILY,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        op_tags=gate_tags(WRITE_JOB),
        retry_policy=DEFAULT_RETRY_POLICY,
        description=(
            f"Postgres `{table.name}` in ClickHouse (ReplacingMergeTree on `_version`; read with FINAL for one row "
            f"per `{table.key}`). Dagster partitions are days of `{table.partition_column}` (UTC); ClickHouse "
            f"partitions are months (fewer parts per insert), and a backfill of some days leaves the month's "
            f"other days as they were."
        ),
    )
    def _asset(
        context: dg.AssetExecutionContext, config: SyncConfig, postgres: PostgresResource, warehouse: WarehouseResource
    ) -> dg.MaterializeResult:
        guard_run(context, postgres)
        with engine.table_lock(table, postgres), warehouse.client() as ch:
            plan = engine.prepare(table, postgres, ch)
            pull = warehouse.pull_postgres_url
            if config.mode == "incremental":
                result = engine.incremental(plan, postgres, ch, pull)
            else:
                window = context.partition_time_window
                result = engine.replace_partitions(plan, postgres, ch, window.start, window.end, pull)
        context.log.info(f"{table.name}: {result.mode} moved {result.rows} rows")
        return dg.MaterializeResult(metadata=result.metadata() | {"path": "server pull" if pull else "client stream"})

    @dg.asset_check(asset=_asset, name="matches_postgres", blocking=False, pool=WAREHOUSE_POOL,
                    retry_policy=DEFAULT_RETRY_POLICY,
                    description="Row count and checksum of ids and versions equal Postgres (through FINAL). Exact "
                                "when no rows changed since the last sync; run it on demand, not in every sync.")
    def _parity(postgres: PostgresResource, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return parity_check(table, postgres, warehouse)

    return _asset, _parity


def parity_check(table: SyncedTable, postgres: PostgresResource, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    pg_count, pg_sum = parity_postgres(table, postgres)
    ch_count, ch_sum = parity_warehouse(table, warehouse)
    return dg.AssetCheckResult(
        passed=(pg_count, pg_sum) == (ch_count, ch_sum),
        metadata={"postgres_rows": pg_count, "warehouse_rows": ch_count,
                  "postgres_checksum": str(pg_sum), "warehouse_checksum": str(ch_sum)},
    )


def parity_postgres(table: SyncedTable, postgres: PostgresResource) -> tuple[int, int]:
    version = table.version_expression()
    with postgres.begin() as conn:
        row = conn.execute(
            text(f"SELECT count(*), coalesce(sum(({table.key} * 1000003 + {version}) % 1000000007), 0) FROM {table.name}")
        ).one()
    return int(row[0]), int(row[1])


def parity_warehouse(table: SyncedTable, warehouse: WarehouseResource) -> tuple[int, int]:
    with warehouse.client() as ch:
        row = ch.query(
            f"SELECT count(), sum((toInt128({table.key}) * 1000003 + _version) % 1000000007) FROM {table.name} FINAL"
        ).result_rows[0]
    return int(row[0]), int(row[1] or 0)


_built = [synced_table_asset(t) for t in SYNCED_TABLES]
WAREHOUSE_ASSETS = [a for a, _ in _built]
WAREHOUSE_CHECKS = [c for _, c in _built]
