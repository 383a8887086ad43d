"""One asset per synced table: `warehouse/<table>`, daily-partitioned, made by one factory.

- Scheduled runs (mode=incremental, every 15 minutes) move the rows changed since the watermark.
- Any other run (a backfill from the UI or CLI, default mode=replace) makes the requested days an
  exact copy of Postgres, in a single run however many days (BackfillPolicy.single_run).
- After a column was added in Postgres, warehouse_backfill_sensor asks for a run with mode=full.
Every run reports each day it moved as a materialized partition with that day's row count.
"""

import time
from datetime import UTC, datetime, timedelta
from typing import Literal

import dagster as dg
from pydantic import Field

from ops_platform.framework.asset_pages import asset_page, columns, fresh_within, observed_schema, row_count
from ops_platform.framework.controls import WRITE_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.notifications import Notification, NotifierResource, Severity
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WAREHOUSE_POOL, WarehouseResource
from ops_platform.sync import engine, evolve
from ops_platform.sync.parity import parity_postgres, parity_warehouse, stored_rows
from ops_platform.sync.rejects import open_rejects
from ops_platform.sync.spec import SYNCED_TABLES, SyncedTable
from ops_platform.sync.types import SCALARS, UnsupportedType

DAILY = dg.DailyPartitionsDefinition(start_date="2025-01-01", end_offset=1)
REJECTS_CHECK = "no_rejected_rows"
BOOKKEEPING = (("_version", "UInt64"), ("_deleted", "UInt8"))  # ReplacingMergeTree's version and tombstone
SYNC_FRESHNESS = fresh_within(timedelta(minutes=15), timedelta(minutes=15))  # seed 004: */15
REFUSALS = (engine.SchemaDrift, UnsupportedType, engine.SyncPermissionError)  # decisions for a person: not retried


class SyncConfig(dg.Config):
    mode: Literal["replace", "incremental", "full"] = Field(
        default="replace",
        description="replace: the run's days become an exact copy of Postgres (a backfill). incremental: rows "
                    "changed since the watermark (the schedule). full: every row, whatever the run's days (the "
                    "backfill the platform asks for after a column was added).")


def guaranteed_schema(table: SyncedTable) -> dg.TableSchema:
    """The columns every sync of `table` has, whatever the application's schema: its partition column and
    cursor (NOT NULL timestamptz, SyncedTable.validate), ReplacingMergeTree's version and tombstone. The
    rest follows Postgres (sync/evolve.py), so each run reports the whole schema it moved."""
    stamp = SCALARS["timestamp with time zone"]
    return columns(*dict.fromkeys([(table.partition_column, stamp), (table.cursor, stamp)]), *BOOKKEEPING)


def synced_table_asset(table: SyncedTable) -> dg.AssetsDefinition:
    key = dg.AssetKey(["warehouse", table.name])

    @dg.asset(
        key=key,
        **asset_page("warehouse_sync", table.name, guaranteed_schema(table), SYNC_FRESHNESS),
        kinds={"clickhouse", "postgres"},
        deps=[["postgres", table.name]],
        partitions_def=DAILY,
        backfill_policy=dg.BackfillPolicy.single_run(),
        pool=WAREHOUSE_POOL,
        op_tags=gate_tags(WRITE_JOB),
        retry_policy=DEFAULT_RETRY_POLICY,
        check_specs=[dg.AssetCheckSpec(
            REJECTS_CHECK, asset=key,
            description="No row is held back because ClickHouse cannot hold one of its values exactly (numeric "
                        "NaN, a time out of range, a multi-dimensional array): see sync_rejects, fix the row in "
                        "Postgres, and the next sync moves it.")],
        description=(
            f"Postgres `{table.name}` in ClickHouse (ReplacingMergeTree on `_version`; read with FINAL for one row "
            f"per `{table.key}`). Dagster partitions are days of `{table.partition_column}` (UTC); ClickHouse "
            f"partitions are months (fewer parts per insert), and a backfill of some days leaves the month's "
            f"other days as they were. Each run reports every day whose rows it moved, with that day's count."
        ),
    )
    def _asset(context: dg.AssetExecutionContext, config: SyncConfig, postgres: PostgresResource,
               warehouse: WarehouseResource, notifier: NotifierResource) -> dg.MaterializeResult:
        guard_run(context, postgres)
        started = time.monotonic()
        pull = warehouse.pull_postgres_url
        try:
            with engine.table_lock(table, postgres), warehouse.client() as ch:
                plan = engine.prepare(table, postgres, ch)
                result = _move(context, config.mode, plan, postgres, ch, warehouse)
                stored = stored_rows(ch, table.name)
        except REFUSALS as refusal:
            raise dg.Failure(description=str(refusal), allow_retries=False) from refusal
        seconds = time.monotonic() - started
        schema = [(c.name, c.clickhouse_type(table.name)) for c in plan.columns] + list(BOOKKEEPING)
        context.log.info(f"{table.name}: {result.mode} moved {result.rows} rows in {seconds:.1f} s")
        _report_days(context, plan, postgres, result)
        rejects = _rejects_check(context, table, postgres, notifier, result.rejected)
        return dg.MaterializeResult(
            metadata=result.metadata() | row_count(stored) | observed_schema(schema) | {
                "path": "server pull" if pull else "client stream",
                "rows_per_second": round(result.rows / seconds, 1) if seconds > 0 else 0.0,
                "duration_seconds": round(seconds, 3),
                "schema_changes": [f"{c.column}: {c.change}, {c.detail}" for c in plan.changes],
            },
            check_results=[rejects])

    @dg.asset_check(asset=_asset, name="matches_postgres", blocking=False, pool=WAREHOUSE_POOL,
                    retry_policy=DEFAULT_RETRY_POLICY,
                    description="Row count and checksum of ids and versions equal Postgres (through FINAL). Exact "
                                "when no rows changed since the last sync; run it on demand, not in every sync.")
    def _parity(postgres: PostgresResource, warehouse: WarehouseResource) -> dg.AssetCheckResult:
        return parity_check(table, postgres, warehouse)

    return _asset, _parity


def _move(context, mode: str, plan: engine.Plan, postgres, ch, warehouse: WarehouseResource) -> engine.SyncResult:
    route = {"pull_url": warehouse.pull_postgres_url, "parallel_from_rows": warehouse.parallel_from_rows}
    if mode == "incremental":
        return engine.incremental(plan, postgres, ch, **route)
    if mode == "full":
        lo, hi = engine.data_extent(plan, postgres)
        result = engine.replace_partitions(plan, postgres, ch, lo, hi, **route) if lo else \
            engine.SyncResult(0, None, None, "replace")
        evolve.mark_backfilled(postgres, plan.table.name, [c.name for c in plan.columns], context.run.run_id)
        return result
    window = context.partition_time_window
    return engine.replace_partitions(plan, postgres, ch, window.start, window.end, **route)


def _report_days(context: dg.AssetExecutionContext, plan: engine.Plan, postgres: PostgresResource,
                 result: engine.SyncResult) -> None:
    """Each day whose rows the run moved is a materialized partition with that day's own row count: the
    run's own days through their metadata, other days (an incremental run moves rows of any day) as
    materializations of their own. A day no run has moved a row of stays Missing until a backfill
    makes it an exact (empty) copy: one event per empty day of two years would cost every first sync
    seconds of Dagster storage writes."""
    own = set(context.partition_keys)
    column = plan.table.cursor if result.mode == "incremental" else plan.table.partition_column
    counts = {d.isoformat(): n for d, n in engine.rows_per_day(plan, postgres, column, result.window_start,
                                                                result.window_end or datetime.now(UTC)).items()}
    days = set(counts) & set(DAILY.get_partition_keys())
    for day in sorted(own):
        context.add_asset_metadata({"rows": counts.get(day, 0)}, partition_key=day)
    for day in sorted(days - own):
        context.log_event(dg.AssetMaterialization(
            asset_key=context.asset_key, partition=day,
            metadata={"rows": counts.get(day, 0), "mode": result.mode, "run_rows": result.rows}))


def _rejects_check(context, table: SyncedTable, postgres: PostgresResource, notifier: NotifierResource,
                   new: int) -> dg.AssetCheckResult:
    """Red while rows are held back; a WARN notification names the new ones (once per run)."""
    with postgres.begin() as conn:
        count, oldest = open_rejects(conn, table.name)
    listed = [f"{table.name}.{r.column} key {r.key}: {r.value!r} ({r.reason})" for r in oldest]
    if new:
        notifier.send(Notification(
            type="warehouse.rejects", severity=Severity.WARN, title=f"warehouse/{table.name}: {new} rows held back",
            body=f"{count} rows of {table.name} are not in ClickHouse because one of their values cannot be held "
            "exactly; fix them in Postgres and the next sync moves them.\n" + "\n".join(listed),
            dedup_key=f"warehouse.rejects:{table.name}:{context.run.run_id}"))
    return dg.AssetCheckResult(check_name=REJECTS_CHECK, passed=count == 0, severity=dg.AssetCheckSeverity.ERROR,
                               metadata={"held_back_rows": count, "oldest": "\n".join(listed)})


def parity_check(table: SyncedTable, postgres: PostgresResource, warehouse: WarehouseResource) -> dg.AssetCheckResult:
    pg_count, pg_sum = parity_postgres(table, postgres)
    ch_count, ch_sum = parity_warehouse(table, warehouse)
    return dg.AssetCheckResult(
        passed=(pg_count, pg_sum) == (ch_count, ch_sum),
        metadata={"postgres_rows": pg_count, "warehouse_rows": ch_count,
                  "postgres_checksum": str(pg_sum), "warehouse_checksum": str(ch_sum)},
    )


_built = [synced_table_asset(t) for t in SYNCED_TABLES]
WAREHOUSE_ASSETS = [a for a, _ in _built]
WAREHOUSE_CHECKS = [c for _, c in _built]
