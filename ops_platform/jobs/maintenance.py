"""Maintenance: retention by table policy (seeds 001, 002, 003) and execution compaction (seed 002)."""

from datetime import UTC, datetime

import dagster as dg

from ops_platform.framework.controls import WRITE_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.maintenance.archive import EXECUTIONS, move_to_warehouse
from ops_platform.maintenance.retention import POLICIES, apply_in_postgres, log_result
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WAREHOUSE_POOL, WarehouseResource


def retention_job(name: str, tables: list[str], description: str) -> dg.JobDefinition:
    """A job that applies the retention policies of `tables` and logs each result to system_logs."""

    @dg.op(name=f"{name}_op", tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY)
    def _apply(context: dg.OpExecutionContext, postgres: PostgresResource) -> dg.Output:
        guard_run(context, postgres)
        now = datetime.now(UTC)
        results = {}
        with postgres.begin() as conn:
            for table in tables:
                result = apply_in_postgres(conn, POLICIES[table], now)
                log_result(conn, name, result)
                results[table] = result
        context.log.info(f"{name}: {results}")
        metadata = {f"{t}.{k}": v for t, r in results.items() for k, v in r.items() if k != "table"}
        return dg.Output(None, metadata=metadata)

    @dg.job(name=name, description=description)
    def _job():
        _apply()

    return _job


@dg.op(tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY, pool=WAREHOUSE_POOL)
def compact_executions(context: dg.OpExecutionContext, postgres: PostgresResource, warehouse: WarehouseResource) -> dg.Output:
    guard_run(context, postgres)
    cutoff = POLICIES["executions"].cutoff(datetime.now(UTC))
    with warehouse.client() as ch:
        compacted = move_to_warehouse(EXECUTIONS, postgres, ch, cutoff)
    result = {"compacted": compacted, "cutoffTime": cutoff.isoformat()}
    with postgres.begin() as conn:
        log_result(conn, "execution_compaction_job", result)
    return dg.Output(None, metadata=result)


@dg.job(description="Seed 002 compactOldExecutions: executions older than 30 days move to ClickHouse "
                    "(executions_archive), verified, then leave Postgres.")
def execution_compaction_job():
    compact_executions()


activity_cleanup_job = retention_job(
    "activity_cleanup_job", ["agent_activity_feed"], "Seed 002 cleanupOldActivity: activity older than 7 days.")
log_retention_job = retention_job(
    "log_retention_job", ["system_logs", "audit_logs"],
    "Seed 001 log cleanup: system logs and the product's audit_logs older than 90 days, result logged.")
archive_cleanup_job = retention_job(
    "archive_cleanup_job", ["audit_log", "retry_jobs", "incidents"],
    "Seed 003 cleanup_old_data, archive never delete: audit > 365 d, completed retry jobs > 30 d, "
    "resolved incidents > 90 d.")
