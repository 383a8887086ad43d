"""Seed 003 afterJobExecution: a failed run whose error is retryable goes to the retry queue, which runs its
job again (the seed's executeJob), with the seed's error categories deciding (framework/error_categories.py;
each failed run's notice and its severity: runs/failure_notices.py):

| category             | what happens to the failed run                                               |
|----------------------|-------------------------------------------------------------------------------|
| transient, external  | a `job.rerun` retry job: the queue's backoff (2 s · 2^(n−1), ≤ 60 s), 5 attempts, then dead letter + WARN |
| database             | retried once (1 attempt), then dead letter + WARN                             |
| auth                 | not retried                                                                   |
| validation           | not retried: recorded in the audit log (INFO)                                 |
| kill_switch          | nothing: a control refused the run                                            |

Not enqueued either: runs the queue itself launched (tag `ops/retry_job`: their failure is the queue's
attempt), and jobs that say the next scheduled run is their retry (tag `ops/retry_queue = off`: the periodic
scan, the source syncs, notification runs). A rerun executes the job by name, from the code location's
definitions, with the failed run's config, in the queue's process, and waits for it (handlers.py `job.rerun`).
"""

from __future__ import annotations

from sqlalchemy import Connection

from ops_platform.framework.error_categories import DATABASE, HANDLING
from ops_platform.retry_queue.handlers import RERUN, RETRY_JOB_TAG
from ops_platform.retry_queue.queue import MAX_ATTEMPTS, enqueue

OPT_OUT_TAG = "ops/retry_queue"
NOT_QUEUED = {OPT_OUT_TAG: "off"}  # job tags of jobs whose next scheduled run is their retry


def queue_owns(tags: dict) -> bool:
    """Runs launched by the queue, of jobs that opted out, and notification runs (their messages have their
    own redelivery): their failures are not enqueued again."""
    return RETRY_JOB_TAG in tags or tags.get(OPT_OUT_TAG) == "off" or tags.get("ops/kind") == "notification"


def enqueue_rerun(conn: Connection, job_name: str, run_id: str, category: str, run_config: dict) -> int | None:
    """Queue the rerun of a failed run (once per run); None when its category is not retried."""
    handling = HANDLING[category]
    if not handling.retryable:
        return None
    attempts = 1 if category == DATABASE else MAX_ATTEMPTS  # database: "retry once"
    return enqueue(conn, RERUN, {"job_name": job_name, "run_id": run_id, "category": category,
                                 "run_config": run_config}, dedup_key=f"rerun:{run_id}", max_attempts=attempts)
