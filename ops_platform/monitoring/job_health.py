"""One job-health monitor for seeds 002 and 003, each job with its own thresholds, read from the audit log.

Every run's outcome and duration is in `audit_log` (action = job name, action_type = 'run'), written by the
run-status sensors. The monitor turns breaches into incidents (one per type, subject and hour):

| incident               | fires when                                                                       | default                    |
|------------------------|----------------------------------------------------------------------------------|----------------------------|
| job_slow               | a run in the last hour took longer than the job's limit                          | seed 003: 30 s             |
| job_slow               | … or longer than `baseline_multiple` × the job's baseline (seed 002 jobs)         | seed 002: 2 × baseline     |
| job_failure_rate       | failed runs / runs over the last 24 h above the job's rate (at least `min_runs`)  | 003: 10 %; 002: 5 % (< 95 % success) |
| retry_queue_depth      | pending retry jobs > 100                                                         | seed 003                   |
| dead_letters_growing   | more unresolved dead letters now than an hour ago                               | seed 003                   |
| health_check           | seed 002's health check: its last result `error`, or its last two `warning`      | seed 002                   |

The baseline of a job is the median duration of its successful runs in the 7 days before the last 24 h
(no baseline yet: no baseline rule). Per-job overrides: OPS_JOB_HEALTH_THRESHOLDS, a JSON object
{"job_name": {"max_duration_seconds": 120, "max_failure_rate": 0.2, "baseline_multiple": null}}, validated at load.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, fields, replace
from datetime import datetime

from sqlalchemy import Connection, text

from ops_platform.monitoring.incidents import Incident
from ops_platform.notifications import Severity
from ops_platform.settings import ConfigError, current

THRESHOLDS_VAR = "OPS_JOB_HEALTH_THRESHOLDS"
QUEUE_DEPTH = 100

# Seed 002's crons ("success rate < 95 %, duration > 2× baseline").
SEED_002_JOBS = frozenset({"agent_stats_job", "build_stats_job", "inactive_users_job", "health_check_job",
                           "stalled_builds_job", "activity_cleanup_job", "execution_compaction_job"})


@dataclass(frozen=True)
class Thresholds:
    max_duration_seconds: float | None = 30.0  # seed 003: alert if > 30 s
    baseline_multiple: float | None = None  # seed 002: 2.0
    max_failure_rate: float = 0.10  # seed 003: > 10 %
    min_runs: int = 5  # fewer runs in 24 h say nothing about a rate


SEED_003 = Thresholds()
SEED_002 = Thresholds(max_duration_seconds=None, baseline_multiple=2.0, max_failure_rate=0.05)
_FIELDS = {f.name for f in fields(Thresholds)}


def parse_overrides(raw: Mapping) -> dict[str, dict]:
    """Validate {job: {field: value}}; a ConfigError names the job and the field."""
    for job, values in raw.items():
        if not isinstance(values, dict):
            raise ConfigError(f"{THRESHOLDS_VAR}: {job!r} must map to an object such as {{\"max_duration_seconds\": 60}}")
        for name, value in values.items():
            if name not in _FIELDS:
                raise ConfigError(f"{THRESHOLDS_VAR}: {job}.{name} is not a threshold; known: {sorted(_FIELDS)}")
            if value is not None and (isinstance(value, bool) or not isinstance(value, int | float) or value < 0):
                raise ConfigError(f"{THRESHOLDS_VAR}: {job}.{name} must be a number ≥ 0 or null, got {value!r}")
    return {job: dict(values) for job, values in raw.items()}


def overrides_from_settings() -> dict[str, dict]:
    return parse_overrides(current().job_health_thresholds)


def thresholds_for(job: str, overrides: Mapping[str, Mapping] | None = None) -> Thresholds:
    base = SEED_002 if job in SEED_002_JOBS else SEED_003
    return replace(base, **(overrides or {}).get(job, {}))


JOB_STATS_SQL = text("""
SELECT action AS job,
       count(*) FILTER (WHERE ts > :now - interval '24 hours') AS runs,
       count(*) FILTER (WHERE ts > :now - interval '24 hours' AND NOT success) AS failures,
       max(duration_ms) FILTER (WHERE ts > :now - interval '1 hour') / 1000.0 AS slowest_seconds,
       percentile_cont(0.5) WITHIN GROUP (ORDER BY duration_ms) FILTER (
           WHERE success AND ts <= :now - interval '24 hours') / 1000.0 AS baseline_seconds
FROM audit_log
WHERE action_type = 'run' AND ts > :now - interval '8 days' AND ts <= :now
GROUP BY action
""")
QUEUE_SQL = text("""
SELECT (SELECT count(*) FROM retry_jobs WHERE status = 'pending' AND NOT archived) AS depth,
       (SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL) AS letters_now,
       (SELECT count(*) FROM dead_letters WHERE created_at <= :now - interval '1 hour'
          AND (resolved_at IS NULL OR resolved_at > :now - interval '1 hour')) AS letters_hour_ago
""")


HEALTH_CHECK_SQL = text("""
SELECT (array_agg(status ORDER BY ts DESC))[1:2] AS last_two, (array_agg(error ORDER BY ts DESC))[1] AS error,
       (array_agg(task_table_size ORDER BY ts DESC))[1] AS tasks,
       (array_agg(activity_table_size ORDER BY ts DESC))[1] AS activity
FROM health_check_results WHERE ts > :now - interval '2 hours' AND ts <= :now
""")


def _health_check(conn: Connection, now: datetime) -> list[Incident]:
    """Seed 002: "Alert on 'error' or repeated 'warning'" (the last two results, within two hours)."""
    row = conn.execute(HEALTH_CHECK_SQL, {"now": now}).one()
    last = row.last_two or []
    if last[:1] == ["error"]:
        return [Incident("health_check", "error", Severity.WARN, "Health check: error", row.error or "query failed")]
    if last == ["warning", "warning"]:
        return [Incident("health_check", "warning", Severity.WARN, "Health check: warning twice in a row",
                         f"Tables growing too large: {row.tasks} tasks (warn above 100000), {row.activity} activity "
                         "rows (warn above 1000000).")]
    return []


def check_job_health(conn: Connection, now: datetime, overrides: Mapping[str, Mapping] | None = None) -> list[Incident]:
    """The incidents that hold at `now` (see the module's table)."""
    found = []
    for row in conn.execute(JOB_STATS_SQL, {"now": now}):
        limits = thresholds_for(row.job, overrides)
        found += _slow(row, limits) + _failing(row, limits)
    found += _health_check(conn, now)
    queue = conn.execute(QUEUE_SQL, {"now": now}).one()
    if queue.depth > QUEUE_DEPTH:
        found.append(Incident("retry_queue_depth", "retry_jobs", Severity.WARN, f"Retry queue holds {queue.depth} jobs",
                              f"{queue.depth} retry jobs are pending (alert above {QUEUE_DEPTH})."))
    if queue.letters_now > queue.letters_hour_ago:
        found.append(Incident("dead_letters_growing", "dead_letters", Severity.WARN,
                              f"Dead letters growing: {queue.letters_hour_ago} → {queue.letters_now}",
                              f"{queue.letters_now} unresolved dead letters, {queue.letters_hour_ago} an hour ago. "
                              "See `ops dead-letters`."))
    return found


def _slow(row, limits: Thresholds) -> list[Incident]:
    if row.slowest_seconds is None:
        return []
    slowest, limit, why = float(row.slowest_seconds), None, ""
    if limits.max_duration_seconds is not None:
        limit, why = limits.max_duration_seconds, f"limit {limits.max_duration_seconds:g} s"
    if limits.baseline_multiple is not None and row.baseline_seconds is not None:
        by_baseline = limits.baseline_multiple * float(row.baseline_seconds)
        if limit is None or by_baseline < limit:
            limit, why = by_baseline, (f"{limits.baseline_multiple:g} × its baseline of "
                                       f"{float(row.baseline_seconds):.1f} s")
    if limit is None or slowest <= limit:
        return []
    return [Incident("job_slow", row.job, Severity.WARN, f"Job slow: {row.job} took {slowest:.1f} s",
                     f"A run of {row.job} in the last hour took {slowest:.1f} s ({why}).")]


def _failing(row, limits: Thresholds) -> list[Incident]:
    if row.runs < max(1, limits.min_runs):
        return []
    rate = row.failures / row.runs
    if rate <= limits.max_failure_rate:
        return []
    return [Incident("job_failure_rate", row.job, Severity.WARN,
                     f"Job failing often: {row.job} {100 * rate:.0f}% of runs failed",
                     f"{row.failures} of {row.runs} runs of {row.job} failed in the last 24 h "
                     f"(alert above {100 * limits.max_failure_rate:g}%; success rate {100 * (1 - rate):.0f}%).")]


def describe_thresholds(jobs: list[str], overrides: Mapping[str, Mapping] | None = None) -> str:
    return json.dumps({job: vars(thresholds_for(job, overrides)) for job in jobs})
