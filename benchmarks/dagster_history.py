"""What Dagster's own history costs here, measured on a real instance (README, "Load model").

1. Ticks: the platform's real daemon (dagster-daemon over workspace.yaml, dagster.yaml on the embedded
   Postgres) runs idle for a window; after a warm-up, count the schedule/sensor ticks it writes, the bytes
   they add to Dagster's tables, and the CPU seconds of the daemon and its code server.
2. Runs: a platform job (agent_stats_job, one asset on Postgres) executed N times on the same instance:
   bytes per run in Dagster's storage, CPU seconds per run in process, and the CPU a run worker spends
   loading the code location (each launched run is a fresh process that does).
3. History: the same runs archived to ClickHouse and removed (ops_platform/history), our way, vs keeping
   them: bytes in the archive per run, CPU seconds per run archived.

    .venv/bin/python benchmarks/dagster_history.py [--seconds 150] [--runs 30]
"""

from __future__ import annotations

import argparse
import os
import resource
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import psutil
from sqlalchemy import create_engine, text
from sqlalchemy.pool import NullPool

from ops_platform.history.archive import bound_history
from ops_platform.runtime import running
from ops_platform.schema.migrate import migrate_postgres, migrate_warehouse
from ops_platform.settings import DAGSTER_PG_URL_VAR, PROJECT_ROOT

DAGSTER_BYTES_SQL = text("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                         "JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = 'public' AND c.relkind = 'r'")
# Sessions ever opened on the server (Postgres 14+), and those open now: Dagster's storage opens a
# connection per operation (NullPool), so churn, not held connections, is what it costs.
SESSIONS_SQL = text("SELECT sum(sessions) FROM pg_stat_database")
OPEN_SQL = text("SELECT count(*) FROM pg_stat_activity WHERE backend_type = 'client backend'")
TICKS_SQL = text("SELECT count(*), coalesce(sum(pg_column_size(t.*)), 0) FROM job_ticks t")
WARM_UP_SECONDS = 45


def cpu_seconds(process: psutil.Process) -> float:
    """CPU seconds of a process and its live descendants."""
    total = 0.0
    for p in [process, *process.children(recursive=True)]:
        try:
            times = p.cpu_times()
            total += times.user + times.system
        except psutil.NoSuchProcess:
            pass
    return total


def measure_ticks(dagster_pg, env: dict, seconds: int) -> dict:
    daemon = psutil.Popen([str(Path(sys.executable).with_name("dagster-daemon")), "run", "-w", "workspace.yaml"],
                          cwd=PROJECT_ROOT, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        time.sleep(WARM_UP_SECONDS)  # imports, code server start, first evaluations
        with dagster_pg.connect() as conn:
            ticks0, tick_bytes0 = conn.execute(TICKS_SQL).one()
            size0 = conn.execute(DAGSTER_BYTES_SQL).scalar_one()
            sessions0 = conn.execute(SESSIONS_SQL).scalar_one()
        cpu0, started = cpu_seconds(daemon), time.monotonic()
        peak, samples = 0, 0
        while time.monotonic() - started < seconds:  # the measured window, sampled each second
            with dagster_pg.connect() as conn:
                peak = max(peak, conn.execute(OPEN_SQL).scalar_one() - 1)
            samples += 1
            time.sleep(1)
        cpu1, elapsed = cpu_seconds(daemon), time.monotonic() - started
        with dagster_pg.connect() as conn:
            sessions = conn.execute(SESSIONS_SQL).scalar_one() - sessions0 - samples - 1  # less our own
            ticks1, tick_bytes1 = conn.execute(TICKS_SQL).one()
            size1 = conn.execute(DAGSTER_BYTES_SQL).scalar_one()
            runs = conn.execute(text("SELECT count(*) FROM runs")).scalar_one()
    finally:
        daemon.terminate()
        daemon.wait(60)
    ticks = ticks1 - ticks0
    return {"seconds": elapsed, "ticks": ticks, "ticks_per_day": ticks / elapsed * 86400,
            "tick_row_bytes": (tick_bytes1 - tick_bytes0) / max(ticks, 1),
            "tick_storage_bytes": (size1 - size0) / max(ticks, 1),
            "daemon_cpu_per_second": (cpu1 - cpu0) / elapsed, "cpu_per_tick": (cpu1 - cpu0) / max(ticks, 1),
            "runs_launched": runs, "sessions_per_tick": sessions / max(ticks, 1), "peak_connections": peak}


def measure_runs(instance: dg.DagsterInstance, dagster_pg, count: int) -> dict:
    from ops_platform.definitions import defs

    job = defs.resolve_job_def("agent_stats_job")
    job.execute_in_process(instance=instance)  # warm: first-run imports and table creation
    with dagster_pg.connect() as conn:
        size0 = conn.execute(DAGSTER_BYTES_SQL).scalar_one()
    with dagster_pg.connect() as conn:
        sessions0 = conn.execute(SESSIONS_SQL).scalar_one()
    cpu0 = time.process_time()
    for _ in range(count):
        assert job.execute_in_process(instance=instance).success
    cpu = (time.process_time() - cpu0) / count
    with dagster_pg.connect() as conn:
        sessions = conn.execute(SESSIONS_SQL).scalar_one() - sessions0 - 1
        size1 = conn.execute(DAGSTER_BYTES_SQL).scalar_one()
        events = conn.execute(text("SELECT count(*) FROM event_logs")).scalar_one()
        runs = conn.execute(text("SELECT count(*) FROM runs")).scalar_one()
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    for _ in range(3):
        subprocess.run([sys.executable, "-c", "import ops_platform.definitions"], check=True, env=os.environ.copy())
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    load = (after.ru_utime + after.ru_stime - before.ru_utime - before.ru_stime) / 3
    return {"bytes_per_run": (size1 - size0) / count, "cpu_per_run": cpu, "worker_load_cpu": load,
            "events_per_run": events / max(runs, 1), "sessions_per_run": sessions / count}


def measure_archive(instance: dg.DagsterInstance, warehouse) -> dict:
    runs = len(instance.get_run_records())
    cpu0, wall0 = time.process_time(), time.perf_counter()
    with warehouse.client() as ch:
        result = bound_history(instance, ch, datetime.now(UTC))
        archive_bytes = ch.query("SELECT sum(bytes_on_disk) FROM system.parts WHERE active AND database = "
                                 "currentDatabase() AND table IN ('dagster_runs_archive', 'dagster_events_archive')"
                                 ).result_rows[0][0]
    removed = max(len(result.removed), 1)
    return {"runs": runs, "removed": len(result.removed), "kept": len(result.kept),
            "cpu_per_archived_run": (time.process_time() - cpu0) / removed,
            "seconds_per_archived_run": (time.perf_counter() - wall0) / removed,
            "archive_bytes_per_run": archive_bytes / removed}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=int, default=150, help="measured window of the idle daemon")
    parser.add_argument("--runs", type=int, default=30)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="ops-bench-") as home, running(Path(home)) as runtime:
        migrate_postgres(runtime.postgres)
        migrate_warehouse(runtime.warehouse)
        dagster_pg = create_engine(runtime.env[DAGSTER_PG_URL_VAR].replace("postgresql://", "postgresql+psycopg://", 1),
                                   isolation_level="AUTOCOMMIT", poolclass=NullPool)
        with dg.DagsterInstance.get() as instance:  # DAGSTER_HOME/dagster.yaml: Postgres storage
            instance.get_runs(limit=1)  # creates Dagster's tables before the daemon starts
            ticks = measure_ticks(dagster_pg, os.environ.copy(), args.seconds)
            runs = measure_runs(instance, dagster_pg, args.runs)
            archive = measure_archive(instance, runtime.warehouse)
        dagster_pg.dispose()
    print(f"idle daemon, {ticks['seconds']:.0f} s after a {WARM_UP_SECONDS} s warm-up:")
    print(f"  ticks            {ticks['ticks']} ({ticks['ticks_per_day']:,.0f} a day); "
          f"runs launched {ticks['runs_launched']}")
    print(f"  per tick         {ticks['tick_row_bytes']:,.0f} B tick row, {ticks['tick_storage_bytes']:,.0f} B of "
          f"Dagster storage growth, {ticks['cpu_per_tick'] * 1000:,.0f} ms daemon CPU")
    print(f"  daemon CPU       {ticks['daemon_cpu_per_second'] * 100:.1f} % of one core")
    print(f"  Postgres         {ticks['sessions_per_tick']:.1f} sessions opened per tick, at most "
          f"{ticks['peak_connections']} open at once")
    print(f"runs of agent_stats_job ({args.runs}):")
    print(f"  per run          {runs['bytes_per_run']:,.0f} B of Dagster storage, {runs['events_per_run']:.0f} events, "
          f"{runs['cpu_per_run'] * 1000:,.0f} ms CPU in process + {runs['worker_load_cpu'] * 1000:,.0f} ms to load "
          "the code location in a run worker")
    print(f"  Postgres         {runs['sessions_per_run']:.1f} sessions opened per run (in process)")
    print(f"history pass ({archive['runs']} runs): {archive['removed']} archived and removed, {archive['kept']} kept "
          "for the catalog")
    print(f"  per run          {archive['archive_bytes_per_run']:,.0f} B in ClickHouse, "
          f"{archive['cpu_per_archived_run'] * 1000:,.0f} ms CPU, "
          f"{archive['seconds_per_archived_run'] * 1000:,.0f} ms wall")


if __name__ == "__main__":
    main()
