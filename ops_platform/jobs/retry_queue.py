"""Seed 003 `process_retry_queue`: one pass over the retry queue (up to 10 ready jobs)."""

import dagster as dg

import ops_platform.events.webhooks  # noqa: F401 - registers the webhook.redeliver handler the queue runs
from ops_platform.framework.controls import WRITE_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.notifications import NotifierResource
from ops_platform.resources.postgres import PostgresResource
from ops_platform.retry_queue.queue import process_ready


@dg.op(tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY)
def process_retry_queue(
    context: dg.OpExecutionContext, postgres: PostgresResource, notifier: NotifierResource
) -> dg.Output:
    guard_run(context, postgres)
    counts = process_ready(postgres, notifier, run_id=context.run_id, log=context.log.info)
    context.log.info(f"retry queue pass: {counts}")
    return dg.Output(None, metadata=counts)


@dg.job(tags={"ops/kind": "retry_queue"},
        description="Runs up to 10 ready retry jobs: completed, retried with backoff, or dead-lettered and notified.")
def retry_queue_job():
    process_retry_queue()
