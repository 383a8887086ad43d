"""A small code location the crash tests run under a real daemon: one job whose step holds a `warehouse`
pool slot and then waits on a Postgres advisory lock the test holds, so the test decides when it ends."""

import dagster as dg
import psycopg

from ops_platform.resources.warehouse import WAREHOUSE_POOL


class GateConfig(dg.Config):
    database_url: str
    lock_key: int
    fail: bool = False


@dg.op(pool=WAREHOUSE_POOL)
def hold_warehouse_slot(config: GateConfig) -> None:
    with psycopg.connect(config.database_url) as conn:
        conn.execute("SELECT pg_advisory_lock(%s)", (config.lock_key,))
    if config.fail:
        raise dg.Failure("failed on purpose", allow_retries=False)


@dg.job(executor_def=dg.in_process_executor)  # the step runs in the run worker: one process to kill
def pooled_job():
    hold_warehouse_slot()


defs = dg.Definitions(jobs=[pooled_job])
