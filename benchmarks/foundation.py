"""Foundation benchmark: our way vs the naive way, same run, same data, on the embedded Postgres.

1. Demo data: COPY in bounded chunks vs one INSERT per row (the naive rate is measured on a
   sample of the same rows; inserting a million rows one by one would take minutes).
2. Agent stats cache: one SQL statement (hash aggregates in Postgres) vs the seed's algorithm
   (for each agent, filter all tasks and executions in Python), checked for equal results.

    .venv/bin/python benchmarks/foundation.py [--scale 1000000]
"""

from __future__ import annotations

import argparse
import time
from datetime import UTC, datetime

import numpy as np
from scratch import scratch_platform
from sqlalchemy import text

from ops_platform.assets.agent_builds import REFRESH_SQL
from ops_platform.demo import generate as demo
from ops_platform.resources.postgres import PostgresResource

NOW = datetime(2026, 11, 1, tzinfo=UTC)


def timed(fn):
    started = time.perf_counter()
    value = fn()
    return time.perf_counter() - started, value


def naive_inserts(postgres: PostgresResource, rows: int) -> float:
    """Row-by-row INSERTs of the same task rows the generator makes."""
    frame = next(demo._tasks(np.random.default_rng(7), rows, NOW))
    records = list(frame.itertuples(index=False))
    with postgres.raw() as conn:
        conn.execute("CREATE TEMP TABLE naive_tasks (LIKE tasks INCLUDING DEFAULTS)")
        started = time.perf_counter()
        for r in records:
            conn.execute("INSERT INTO naive_tasks (agent_name, title, status, created_at) VALUES (%s, %s, %s, %s)",
                         (r.agent_name, r.title, r.status, r.created_at.to_pydatetime(warn=False)))
        return time.perf_counter() - started


def naive_stats(postgres: PostgresResource) -> dict[str, tuple]:
    """The seed's loop: for each agent, filter every task and execution."""
    with postgres.begin() as conn:
        agents = [r.name for r in conn.execute(text("SELECT name FROM agents"))]
        tasks = conn.execute(text("SELECT agent_name, status FROM tasks")).all()
        executions = conn.execute(text("SELECT agent_name, duration_ms, ts FROM executions")).all()
    stats = {}
    for agent in agents:
        mine = [t for t in tasks if t.agent_name == agent]
        runs = [e for e in executions if e.agent_name == agent]
        done = sum(t.status == "done" for t in mine)
        stats[agent] = (len(mine), done, sum(t.status == "failed" for t in mine),
                        round(sum(e.duration_ms for e in runs) / len(runs), 2) if runs else None)
    return stats


def sql_stats(postgres: PostgresResource) -> dict[str, tuple]:
    with postgres.begin() as conn:
        conn.execute(REFRESH_SQL)
        rows = conn.execute(text("SELECT agent_name, total_tasks, completed_tasks, failed_tasks, avg_duration_ms "
                                 "FROM agent_stats_cache")).all()
    return {r.agent_name: (r.total_tasks, r.completed_tasks, r.failed_tasks,
                           float(r.avg_duration_ms) if r.avg_duration_ms is not None else None) for r in rows}


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--scale", type=int, default=1_000_000, help="tasks (and executions)")
    parser.add_argument("--naive-rows", type=int, default=20_000)
    args = parser.parse_args()
    with scratch_platform() as (_, postgres):
        seconds, counts = timed(lambda: demo.generate(postgres, scale=args.scale, now=NOW))
        total = sum(counts.values())
        naive_seconds = naive_inserts(postgres, args.naive_rows)
        ours_rate, naive_rate = total / seconds, args.naive_rows / naive_seconds
        print(f"demo data, scale {args.scale:,}: {total:,} rows in {seconds:.1f} s = {ours_rate:,.0f} rows/s (COPY)")
        print(f"  naive row-by-row INSERT, {args.naive_rows:,} of the same task rows: {naive_rate:,.0f} rows/s")
        print(f"  ratio: {ours_rate / naive_rate:.1f}x; naive would need {total / naive_rate / 60:.1f} min for the same rows")

        sql_seconds, by_sql = timed(lambda: sql_stats(postgres))
        loop_seconds, by_loop = timed(lambda: naive_stats(postgres))
        by_sql = {a: (t, d, f, None if m is None else round(m, 2)) for a, (t, d, f, m) in by_sql.items()}
        assert by_sql == by_loop, "the two ways disagree"
        print(f"agent stats cache over {counts['tasks']:,} tasks and {counts['executions']:,} executions "
              f"({len(by_sql)} agents, results equal):")
        print(f"  SQL pushdown + upsert: {sql_seconds * 1000:,.0f} ms")
        print(f"  seed's per-agent loop in Python: {loop_seconds * 1000:,.0f} ms")
        print(f"  ratio: {loop_seconds / sql_seconds:.1f}x")


if __name__ == "__main__":
    main()
