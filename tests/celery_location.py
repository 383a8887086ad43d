"""A code location for the Celery test, on the platform's executor (OPS_EXECUTOR=celery): two steps that run
side by side, each then followed by a step in the `warehouse` pool. Every step waits on a Postgres advisory
lock the test holds (its gate) and then records one write, so the test decides when a step ends and can
kill the process running it mid-step. A step's connection names it and its process (application_name)."""

import os

import dagster as dg
import psycopg

from ops_platform.executor import chosen_executor
from ops_platform.resources.warehouse import WAREHOUSE_POOL


class GateConfig(dg.Config):
    database_url: str
    gate: int


def wait_then_write(context: dg.OpExecutionContext, config: GateConfig) -> None:
    step = context.op.name
    with psycopg.connect(config.database_url, autocommit=True, application_name=f"{step}:{os.getpid()}") as conn:
        conn.execute("SELECT pg_advisory_lock_shared(%s)", (config.gate,))
        conn.execute("INSERT INTO celery_writes (step, pid) VALUES (%s, %s)", (step, os.getpid()))


@dg.op(out=dg.Out(dg.Nothing))
def side_a(context: dg.OpExecutionContext, config: GateConfig) -> None:
    wait_then_write(context, config)


@dg.op(out=dg.Out(dg.Nothing))
def side_b(context: dg.OpExecutionContext, config: GateConfig) -> None:
    wait_then_write(context, config)


@dg.op(pool=WAREHOUSE_POOL, ins={"after": dg.In(dg.Nothing)})
def load_a(context: dg.OpExecutionContext, config: GateConfig) -> None:
    wait_then_write(context, config)


@dg.op(pool=WAREHOUSE_POOL, ins={"after": dg.In(dg.Nothing)})
def load_b(context: dg.OpExecutionContext, config: GateConfig) -> None:
    wait_then_write(context, config)


@dg.job(executor_def=chosen_executor())
def celery_job():
    load_a(after=side_a())
    load_b(after=side_b())
