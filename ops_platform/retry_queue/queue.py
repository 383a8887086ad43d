"""The retry queue (seed 003 "Retry Queue Processor"): work that failed, tried again later, then dead-lettered.

A job moves pending → running (claimed by one pass) → completed, back to pending, or dead.

- A pass claims up to 10 ready jobs (pending, run_at ≤ now) with FOR UPDATE SKIP LOCKED and marks
  them running in the same statement, so two processors never take the same job.
- `attempts` counts starts: a claim adds one. After the n-th failed attempt the job waits
  backoff_seconds(n) = min(2·2^(n−1), 60) seconds (2, 4, 8, 16, then dead at the 5th failure).
- A `PermanentError` (unknown job name, bad payload, a rejected request) is dead at once. A
  `TransientError` with `retry_at` (the wait the other side asked for: Retry-After and the like) waits
  at least until then.
- Dead: status 'dead', one dead letter (keyed by the job's dedup_key, else `retry_job:{id}`) and one
  WARN notification `retry_dead:{id}`, which the queue asks of its `DeadJobNotifier` (the
  NotifierResource; the queue imports nothing of notifications/). WARN (the daily digest's redelivery
  aside: SEV1, notifications/policy.py DEAD_LETTER_SEVERITY), not SEV1: the seed rates persistent failures WARN
  ("WARN after 3 failures"), and nothing is lost (the dead letter keeps the work until someone
  resolves it), so it goes to the digest instead of waking someone with an SMS; a burst of dead
  jobs is grouped into one message by the notifier. The notification is sent after the job is
  marked dead; a pass that crashes in between is repaired by the next one (notified_at is NULL).
- Abandoned claims: a job still 'running' RUNNING_TIMEOUT (10 min) after its claim belongs to a
  pass that crashed (a whole pass takes at most ~8 min: 10 jobs × ~50 s of a channel's inline
  attempts, timeouts and obeyed waits, see outbound/retry.py). That start counts as a failed attempt:
  the job goes back to pending with
  backoff, or to the dead letters at max_attempts, so nothing is lost and a job that kills its
  worker cannot loop forever. Handlers therefore run at least once; they are written to be
  idempotent where they can be (a notification already 'sent' is not delivered again).
"""

from __future__ import annotations

import json
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from sqlalchemy import Connection, text

from ops_platform.framework.dead_letters import dead_letter
from ops_platform.outbound.http import safe_url
from ops_platform.resources.postgres import PostgresResource
from ops_platform.retry_queue.handlers import HANDLERS, Deferred, HandlerResources, PermanentError, handler_for

BASE_DELAY_SECONDS = 2
MAX_DELAY_SECONDS = 60
MAX_ATTEMPTS = 5
BATCH_SIZE = 10
RUNNING_TIMEOUT = timedelta(minutes=10)
_SECRET_KEY = re.compile(r"auth|token|secret|password|passwd|cookie|signature|api[-_]?key", re.IGNORECASE)


@dataclass(frozen=True)
class DeadJob:
    id: int
    job_name: str
    attempts: int
    last_error: str | None
    dedup_key: str | None
    payload: dict | None = None  # what the job was asked to do (a redelivery names its message's type)


class DeadJobNotifier(Protocol):
    """What the queue asks of the notifier: tell people about jobs that died (NotifierResource does)."""

    def notify_dead_jobs(self, jobs: list[DeadJob], at: datetime) -> None: ...


def backoff_seconds(attempts: int) -> int:
    """The wait after the `attempts`-th failed attempt: 2·2^(attempts−1) seconds, at most 60."""
    if attempts < 1:
        raise ValueError(f"attempts starts at 1, got {attempts}")
    return min(BASE_DELAY_SECONDS * 2 ** min(attempts - 1, 30), MAX_DELAY_SECONDS)


def enqueue(conn: Connection, job_name: str, payload: dict[str, Any], dedup_key: str | None = None,
            run_at: datetime | None = None, max_attempts: int = MAX_ATTEMPTS) -> int:
    """Queue `job_name` with `payload` (ready at `run_at`, default now); returns the job's id.

    With a `dedup_key` the unit of work is queued once, ever: enqueueing it again returns the
    existing job's id (the unique key in Postgres makes this hold across processes).
    """
    if job_name not in HANDLERS:
        raise ValueError(f"no retry handler for {job_name!r} (known: {', '.join(sorted(HANDLERS))})")
    if not isinstance(payload, dict):
        raise ValueError(f"a retry job's payload is a JSON object, got {type(payload).__name__}")
    if max_attempts < 1:
        raise ValueError(f"max_attempts must be at least 1, got {max_attempts}")
    try:
        body = json.dumps(payload)
    except (TypeError, ValueError) as err:
        raise ValueError(f"a retry job's payload must be JSON: {err}") from None
    row = conn.execute(text(
        "INSERT INTO retry_jobs (job_name, payload, dedup_key, run_at, max_attempts)"
        " VALUES (:job_name, CAST(:payload AS jsonb), :key, COALESCE(CAST(:run_at AS timestamptz), now()), :max)"
        " ON CONFLICT (dedup_key) DO NOTHING RETURNING id"),
        {"job_name": job_name, "payload": body, "key": dedup_key, "run_at": run_at, "max": max_attempts}).first()
    if row is not None:
        return row.id
    return conn.execute(text("SELECT id FROM retry_jobs WHERE dedup_key = :key"), {"key": dedup_key}).scalar_one()


@dataclass(frozen=True)
class Job:
    id: int
    job_name: str
    payload: dict[str, Any]
    attempts: int
    max_attempts: int
    dedup_key: str | None


_JOB_FIELDS = ("id", "job_name", "payload", "attempts", "max_attempts", "dedup_key")
_JOB_COLUMNS = ", ".join(_JOB_FIELDS)


def _job(row) -> Job:
    return Job(**{name: row[name] for name in _JOB_FIELDS})

# What a pass has to do, in the order it does it: also what the sensor looks at.
WORK_SQL = text("""
SELECT id, attempts, status FROM retry_jobs
WHERE (status = 'pending' AND run_at <= :at)
   OR (status = 'running' AND locked_at <= CAST(:at AS timestamptz) - make_interval(secs => :timeout))
   OR (status = 'dead' AND notified_at IS NULL)
ORDER BY run_at, id LIMIT :limit
""")


def pending_work(conn: Connection, at: datetime, limit: int = BATCH_SIZE) -> list:
    """Ready jobs, abandoned claims and unnotified dead jobs: (id, attempts, status) rows."""
    return conn.execute(WORK_SQL, {"at": at, "timeout": RUNNING_TIMEOUT.total_seconds(), "limit": limit}).all()


def claim(conn: Connection, run_id: str, at: datetime, limit: int = BATCH_SIZE) -> list[Job]:
    """Take up to `limit` ready jobs for `run_id`: status running, one more attempt."""
    rows = conn.execute(text(f"""
        UPDATE retry_jobs SET status = 'running', attempts = attempts + 1, locked_by = :run_id, locked_at = :at
        WHERE id IN (SELECT id FROM retry_jobs WHERE status = 'pending' AND run_at <= :at
                     ORDER BY run_at, id LIMIT :limit FOR UPDATE SKIP LOCKED)
        RETURNING {_JOB_COLUMNS}, run_at"""), {"run_id": run_id, "at": at, "limit": limit}).mappings().all()
    return [_job(r) for r in sorted(rows, key=lambda r: (r["run_at"], r["id"]))]


def recover_abandoned(conn: Connection, at: datetime, limit: int = 100) -> Counter:
    """Claims older than RUNNING_TIMEOUT: their start failed. Returns {'retried': n, 'dead': m}."""
    rows = conn.execute(text(f"""
        SELECT {_JOB_COLUMNS}, locked_by, locked_at FROM retry_jobs
        WHERE status = 'running' AND locked_at <= CAST(:at AS timestamptz) - make_interval(secs => :timeout)
        ORDER BY locked_at, id LIMIT :limit FOR UPDATE SKIP LOCKED"""),
        {"at": at, "timeout": RUNNING_TIMEOUT.total_seconds(), "limit": limit}).mappings().all()
    outcomes: Counter = Counter()
    for r in rows:
        minutes = int(RUNNING_TIMEOUT.total_seconds() // 60)
        error = (f"abandoned: run {r['locked_by']} claimed it at {r['locked_at']:%Y-%m-%d %H:%M:%S} UTC"
                 f" and did not finish within {minutes} minutes")
        outcomes[_record_failure(conn, _job(r), error, at, permanent=False)] += 1
    return outcomes


def finish(conn: Connection, job: Job, run_id: str, error: BaseException | None, at: datetime) -> str:
    """Record one attempt's outcome: 'completed', 'retried', 'dead', or 'lost' when the claim
    was no longer ours (recovered as abandoned meanwhile)."""
    still_ours = conn.execute(text(
        "SELECT 1 FROM retry_jobs WHERE id = :id AND status = 'running' AND locked_by = :run FOR UPDATE"),
        {"id": job.id, "run": run_id}).first()
    if still_ours is None:
        return "lost"
    if error is None:
        conn.execute(text("UPDATE retry_jobs SET status = 'completed', completed_at = :at, locked_by = NULL,"
                          " locked_at = NULL WHERE id = :id"), {"id": job.id, "at": at})
        return "completed"
    if isinstance(error, Deferred):
        conn.execute(text("UPDATE retry_jobs SET status = 'pending', attempts = attempts - 1, last_error = :error,"
                          " run_at = :run_at, locked_by = NULL, locked_at = NULL WHERE id = :id"),
                     {"id": job.id, "error": str(error)[:2000],
                      "run_at": at + timedelta(seconds=Deferred.DELAY_SECONDS)})
        return "deferred"
    message = str(error) if isinstance(error, PermanentError) else f"{type(error).__name__}: {error}"
    return _record_failure(conn, job, message, at, permanent=isinstance(error, PermanentError),
                           not_before=getattr(error, "retry_at", None))


def _record_failure(conn: Connection, job: Job, error: str, at: datetime, permanent: bool,
                    not_before: datetime | None = None) -> str:
    """Back to pending after the backoff (and not before `not_before`, a wait the other side asked for),
    or dead when permanent or out of attempts. Returns 'retried' or 'dead'."""
    error = error[:2000]
    if permanent or job.attempts >= job.max_attempts:
        conn.execute(text("UPDATE retry_jobs SET status = 'dead', last_error = :error, locked_by = NULL,"
                          " locked_at = NULL WHERE id = :id"), {"id": job.id, "error": error})
        dead_letter(conn, source=f"retry_queue:{job.job_name}", dedup_key=job.dedup_key or f"retry_job:{job.id}",
                    error=error, attempts=job.attempts,
                    payload={"retry_job_id": job.id, "job_name": job.job_name, "payload": redacted(job.payload)})
        return "dead"
    conn.execute(text("UPDATE retry_jobs SET status = 'pending', last_error = :error, run_at = :run_at,"
                      " locked_by = NULL, locked_at = NULL WHERE id = :id"),
                 {"id": job.id, "error": error,
                  "run_at": max(at + timedelta(seconds=backoff_seconds(job.attempts)), not_before or at)})
    return "retried"


def notify_dead(postgres: PostgresResource, notifier: DeadJobNotifier, at: datetime, limit: int = 100) -> int:
    """Tell the notifier about each dead job not yet notified, then mark them notified; returns how many."""
    with postgres.begin() as conn:
        rows = conn.execute(text(
            "SELECT id, job_name, attempts, last_error, dedup_key, payload FROM retry_jobs"
            " WHERE status = 'dead' AND notified_at IS NULL ORDER BY id LIMIT :limit"), {"limit": limit}).all()
    if not rows:
        return 0
    notifier.notify_dead_jobs([DeadJob(*r) for r in rows], at)
    with postgres.begin() as conn:
        conn.execute(text("UPDATE retry_jobs SET notified_at = now() WHERE id = ANY(:ids) AND notified_at IS NULL"),
                     {"ids": [r.id for r in rows]})
    return len(rows)


def redacted(value: Any) -> Any:
    """The payload with values under secret-looking keys (Authorization, token, api_key…) masked, and
    URLs cut to scheme://host/path (a query string or user:password may carry a token)."""
    if isinstance(value, dict):
        return {k: "***" if _SECRET_KEY.search(str(k)) else
                safe_url(v) if str(k).lower().endswith("url") and isinstance(v, str) else redacted(v)
                for k, v in value.items()}
    if isinstance(value, list):
        return [redacted(v) for v in value]
    return value


def process_ready(postgres: PostgresResource, notifier: DeadJobNotifier, run_id: str, now: datetime | None = None,
                  limit: int = BATCH_SIZE, log: Callable[[str], None] | None = None) -> dict[str, int]:
    """One pass of the processor: recover abandoned claims, run up to `limit` ready jobs, notify the dead.

    `now` fixes the clock (tests); by default each step reads the time when it happens. Returns counts.
    """
    clock = (lambda: now) if now is not None else (lambda: datetime.now(UTC))
    counts: Counter = Counter()
    with postgres.begin() as conn:
        counts.update({f"recovered_{k}": v for k, v in recover_abandoned(conn, clock()).items()})
    with postgres.begin() as conn:
        jobs = claim(conn, run_id, clock(), limit)
    resources = HandlerResources(postgres=postgres, notifier=notifier)
    for job in jobs:
        error: BaseException | None = None
        try:
            handler_for(job.job_name)(job.payload, resources)
        except Exception as err:  # one failing job never stops the pass (seed: "log error and continue")
            error = err
        with postgres.begin() as conn:
            outcome = finish(conn, job, run_id, error, clock())
        counts[outcome] += 1
        if log:
            log(f"retry job {job.id} ({job.job_name}) attempt {job.attempts}/{job.max_attempts}: {outcome}"
                + (f" ({error})" if error else ""))
    counts["notified"] = notify_dead(postgres, notifier, clock())
    return {"claimed": len(jobs), "completed": 0, "retried": 0, "dead": 0} | dict(counts)
