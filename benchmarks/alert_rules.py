"""Canvas alert benchmark: one sensor tick (set-wise evaluation) vs one query per rule, same run, same data.

1,000,000 metric points (5 metrics × 1,000 workspaces, 200 points per series over 24 hours) on the
embedded Postgres. At 100, 1,000 and 10,000 rules (random series, windows of 5 minutes to a day,
every aggregation and operator, a fifth of them recently triggered so the cooldown matters) it times
`alert_tick` (gate, validation, evaluation, last_value bookkeeping, run requests) and the naive loop:
for each rule one aggregate query, then the operator and cooldown in Python (it writes nothing, which
favours it). The naive loop stops after --naive-budget seconds and is extrapolated, clearly labelled.
Both must give the same triggered set (on the rules the naive loop reached).

    .venv/bin/python benchmarks/alert_rules.py [--points 1000000] [--rules 100,1000,10000] [--naive-budget 30]
"""

from __future__ import annotations

import argparse
import operator
import time
from datetime import UTC, datetime, timedelta

import numpy as np
import pandas as pd
import psycopg
from scratch import scratch_platform
from sqlalchemy import text

from ops_platform.canvas_alerts.evaluate import AGGREGATIONS, OPERATORS
from ops_platform.canvas_alerts.metrics import metric_rows_sql
from ops_platform.demo.generate import _copy
from ops_platform.resources.postgres import PostgresResource
from ops_platform.sensors.canvas_alerts import alert_tick

NOW = datetime(2026, 11, 1, 12, 0, tzinfo=UTC)
METRICS = {"errors": (3, 2), "signups": (5, 2), "revenue": (100, 30), "latency_ms": (250, 60), "active_users": (40, 10)}
WORKSPACES = 1_000
WINDOWS = [5, 15, 60, 240, 1440]
COOLDOWN = 60
PY_OPERATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "=": operator.eq,
                "!=": operator.ne}


def load_points(postgres: PostgresResource, n: int, rng) -> None:
    series = [(m, w) for m in METRICS for w in range(1, WORKSPACES + 1)]
    which = np.arange(n) % len(series)
    metric = np.array([s[0] for s in series])[which]
    mean = np.array([METRICS[m][0] for m in metric], dtype=float)
    spread = np.array([METRICS[m][1] for m in metric], dtype=float)
    frame = pd.DataFrame({
        "metric": metric,
        "workspace_id": np.array([s[1] for s in series])[which],
        "ts": pd.Timestamp(NOW) - pd.to_timedelta(rng.uniform(0, 86400, n), unit="s"),
        "value": np.round(rng.normal(mean, spread), 1),
    })
    with postgres.raw() as conn:
        _copy(conn, "metric_points", list(frame.columns), [frame])
    vacuum(postgres, "metric_points")


def vacuum(postgres: PostgresResource, table: str) -> None:
    """What autovacuum does to a loaded table: statistics, and the visibility map that lets an
    index-only scan skip the heap (right after a bulk COPY every page would be fetched)."""
    with psycopg.connect(postgres.url, autocommit=True) as conn:
        conn.execute(f"VACUUM ANALYZE {table}")


def load_rules(postgres: PostgresResource, n: int, rng) -> None:
    """n rules; thresholds near each metric's mean so that some, not all, trigger."""
    metric = np.array(list(METRICS))[rng.integers(0, len(METRICS), n)]
    aggregation = np.array(AGGREGATIONS)[rng.integers(0, len(AGGREGATIONS), n)]
    mean = np.array([METRICS[m][0] for m in metric], dtype=float)
    spread = np.array([METRICS[m][1] for m in metric], dtype=float)
    threshold = np.where(aggregation == "count", rng.integers(0, 30, n),
                         np.where(aggregation == "sum", np.round(mean * rng.integers(1, 30, n)),
                                  np.round(mean + spread * rng.normal(0, 2, n), 1)))
    triggered_ago = rng.uniform(0, 120, n)
    frame = pd.DataFrame({
        "workspace_id": rng.integers(1, WORKSPACES + 1, n),
        "name": [f"rule {i}" for i in range(1, n + 1)],
        "metric": [f"points:{m}" for m in metric],
        "aggregation": aggregation,
        "window_minutes": np.array(WINDOWS)[rng.integers(0, len(WINDOWS), n)],
        "operator": np.array(OPERATORS)[rng.integers(0, len(OPERATORS), n)],
        "threshold": threshold,
        "cooldown_minutes": COOLDOWN,
        "last_triggered_at": pd.Series(pd.Timestamp(NOW) - pd.to_timedelta(triggered_ago, unit="m")).where(
            rng.random(n) < 0.2),
    })
    with postgres.raw() as conn:
        conn.execute("TRUNCATE alert_rules RESTART IDENTITY")
        _copy(conn, "alert_rules", list(frame.columns), [frame])
    vacuum(postgres, "alert_rules")


def naive(postgres: PostgresResource, budget: float) -> tuple[float, int, int, set[int]]:
    """(seconds, rules evaluated, rules in total, triggered ids): one query per rule until the budget."""
    started = time.perf_counter()
    triggered, done = set(), 0
    with postgres.begin() as conn:
        rules = conn.execute(text("SELECT * FROM alert_rules WHERE enabled ORDER BY id")).all()
        for rule in rules:
            rows_sql, params = metric_rows_sql(rule.metric)
            row = conn.execute(text(
                "SELECT (sum(value::numeric) / nullif(count(*), 0))::float8 AS avg,"
                " coalesce(sum(value::numeric), 0)::float8 AS sum, min(value) AS min, max(value) AS max,"
                " count(*) AS count, (array_agg(value ORDER BY ts DESC, value DESC))[1] AS last"
                f" FROM ({rows_sql}) AS rows WHERE workspace_id = :ws AND ts <= :now AND ts > :since"
            ), params | {"ws": rule.workspace_id, "now": NOW,
                         "since": NOW - timedelta(minutes=rule.window_minutes)}).mappings().one()
            value = row[rule.aggregation]
            cooled = rule.last_triggered_at is None or (
                rule.last_triggered_at < NOW and rule.last_triggered_at <= NOW - timedelta(minutes=rule.cooldown_minutes))
            if value is not None and cooled and not rule.breached and PY_OPERATORS[rule.operator](float(value), rule.threshold):
                triggered.add(rule.id)
            done += 1
            if time.perf_counter() - started > budget:
                break
    return time.perf_counter() - started, done, len(rules), triggered


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--points", type=int, default=1_000_000)
    parser.add_argument("--rules", default="100,1000,10000")
    parser.add_argument("--naive-budget", type=float, default=30.0, help="seconds per size before extrapolating")
    args = parser.parse_args()
    rng = np.random.default_rng(11)
    with scratch_platform() as (_, postgres):
        started = time.perf_counter()
        load_points(postgres, args.points, rng)
        with postgres.begin() as conn:  # connect once, so the first tick is not charged for it
            conn.execute(text("SELECT 1"))
        print(f"loaded {args.points:,} metric points in {time.perf_counter() - started:.1f} s\n")
        print(f"{'rules':>7} | {'tick (set-wise)':>22} | {'triggered':>9} | {'runs':>4} | naive, one query per rule")
        for n in (int(x) for x in args.rules.split(",")):
            load_rules(postgres, n, rng)
            times = []
            for _ in range(3):  # a tick writes last_value/last_evaluated_at but not last_triggered_at
                started = time.perf_counter()
                result = alert_tick(postgres, NOW)
                times.append(time.perf_counter() - started)
            with postgres.begin() as conn:
                ids = {t["rule_id"] for r in result.run_requests
                       for t in r.run_config["ops"]["fire_canvas_alerts"]["config"]["triggers"]}
                broken = conn.execute(text("SELECT count(*) FROM alert_rules WHERE last_error IS NOT NULL")).scalar()
            assert broken == 0, f"{broken} benchmark rules are broken"
            seconds, done, total, naive_ids = naive(postgres, args.naive_budget)
            reached = set(range(1, done + 1))  # ids are 1..n and the naive loop goes in id order
            if naive_ids != ids & reached:
                with postgres.begin() as conn:
                    diff = conn.execute(text("SELECT id, aggregation, operator, threshold, last_value FROM alert_rules"
                                             " WHERE id = ANY(:ids)"), {"ids": sorted(naive_ids ^ (ids & reached))}).all()
                raise AssertionError(f"different triggered sets at {n} rules: {diff[:10]}")
            if done == total:
                naive_text = f"{seconds:.2f} s (measured, same triggered set)"
            else:
                naive_text = (f"~{seconds / done * total:.0f} s EXTRAPOLATED from {done:,} rules in {seconds:.1f} s "
                              f"(same triggered set on those)")
            print(f"{n:>7,} | first {times[0]:5.2f} s, best {min(times):5.2f} s | {len(ids):>9,} | "
                  f"{len(result.run_requests):>4} | {naive_text}")


if __name__ == "__main__":
    main()
