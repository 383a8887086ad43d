"""A run whose worker process died is marked failed at once, not after `max_runtime_seconds`.

Why our own sensor: Dagster's run monitoring detects dead run workers only through the run
launcher's `check_run_worker_health`, and the DefaultRunLauncher (local subprocesses, what this
platform uses) does not support it. The code server that started a worker notices within a second
when that worker dies and fails the run, but only while that code server lives and Postgres answers:
when the platform itself was killed or restarted (or Postgres was down as the worker died), the run
stays STARTED with nothing behind it for up to 2 h (`max_runtime_seconds`), fills
`max_concurrent_runs` and keeps its pool slots. The run worker writes its pid in its engine events ("Started process for run
(pid: N)", "Executing steps in process (pid: N)"); when that process no longer runs on this
machine (or the pid now belongs to a younger process), the run is reported failed through
`instance.report_run_failed`. From there Dagster's own settings take over (dagster.yaml): run
retries re-execute it (a worker crash is not a step failure), the audit dead-letters it once no retry
is left, and `free_slots_after_run_end_seconds` frees the pool slots it held.

It acts only with the DefaultRunLauncher: the sensor runs in the code server the daemon started on
the same machine as the run workers. Other launchers (k8s, celery) check worker health themselves.
It obeys no control (like the health monitor): it changes no data, only Dagster's record of a dead run.
"""

from __future__ import annotations

import os
from pathlib import Path

import dagster as dg

_WATCHED = [dg.DagsterRunStatus.STARTED]  # STARTING and CANCELING have Dagster's own timeouts


def worker_pid(instance: dg.DagsterInstance, run_id: str) -> tuple[int, float] | None:
    """(pid, time of the event naming it) of the process executing the run, from its latest run-level
    engine event carrying a pid; None if the worker has not reported one yet."""
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT, ascending=False).records
    for rec in records:
        event = rec.event_log_entry.dagster_event
        pid = event.engine_event_data.metadata.get("pid") if event.step_key is None else None
        if pid is not None:
            return int(pid.value), rec.event_log_entry.timestamp
    return None


def process_running(pid: int, since: float) -> bool:
    """Is `pid` a live (not zombie) process that already existed at `since` (so not a reused pid)?
    Linux /proc; elsewhere only existence is checked."""
    stat_file = Path(f"/proc/{pid}/stat")
    if not Path("/proc/self/stat").exists():
        try:
            os.kill(pid, 0)
        except ProcessLookupError:
            return False
        except PermissionError:
            return True
        return True
    try:
        fields = stat_file.read_text().rpartition(")")[2].split()
    except (FileNotFoundError, ProcessLookupError):
        return False
    state, start_ticks = fields[0], int(fields[19])  # fields 3 and 22 of proc(5)
    if state in ("Z", "X"):
        return False
    boot = next(float(line.split()[1]) for line in Path("/proc/stat").read_text().splitlines()
                if line.startswith("btime"))
    started = boot + start_ticks / os.sysconf("SC_CLK_TCK")
    return started <= since + 1  # btime has a one-second resolution


def fail_dead_run_workers(instance: dg.DagsterInstance) -> list[str]:
    """Report every STARTED run whose worker process is gone as failed; returns their run ids."""
    failed = []
    for record in instance.get_run_records(filters=dg.RunsFilter(statuses=_WATCHED)):
        run = record.dagster_run
        worker = worker_pid(instance, run.run_id)
        if worker is None or process_running(*worker):
            continue
        current = instance.get_run_by_id(run.run_id)  # the worker may have finished and exited meanwhile
        if current is None or current.status != dg.DagsterRunStatus.STARTED:
            continue
        instance.report_run_failed(current, f"The run worker (pid {worker[0]}) is gone: it died without "
                                            "reporting an outcome (killed, out of memory, or its machine restarted).")
        failed.append(run.run_id)
    return failed
