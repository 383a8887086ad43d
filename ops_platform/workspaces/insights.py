"""Daily insights (seed 000): for each workspace with an active connection, what moved in its data yesterday,
as many findings as its owner's AI proactivity allows, best first. Idempotent per workspace and day: a
run replaces that day's insights of its workspaces.

How many (`allowed`), the table written down (seed 000: "balanced = 2–3"):

| ai_proactivity | insights a day |
|---|---|
| off | 0 |
| low | 1 |
| balanced | 2, and a 3rd when it scores ≥ STRONG (a 3-sigma finding) |
| high | up to 5 |

A workspace without an owner counts as `balanced` (the column's default). Fewer findings than allowed:
all of them; none reach MIN_SCORE: no insight that day (nothing is invented).

The generator is an interface (`Generator`): given the workspaces and the day, their candidate findings
with a score. No external AI service is reachable here, so the default (`TrailingBaseline`) is
statistical, deterministic and set-wise in ClickHouse: each metric's value on the day against its
trailing 28-day baseline (mean and standard deviation of the daily values before it); |z| ≥ MIN_SCORE is a
"mover", |z| ≥ STRONG an "anomaly"; score = |z|; ties broken by metric name. A model-backed generator
replaces it by implementing `findings`.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Protocol

from sqlalchemy import text

from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WarehouseResource
from ops_platform.sync.engine import copy_into

MIN_SCORE, STRONG = 2.0, 3.0  # |z| of a finding worth telling; of one strong enough for balanced's 3rd
BASELINE_DAYS, MIN_BASELINE_DAYS = 28, 7  # trailing window; fewer days with data than this: no baseline
MOST = {"off": 0, "low": 1, "balanced": 3, "high": 5}

_WORKSPACES_SQL = text("""
SELECT w.id, coalesce(u.ai_proactivity, 'balanced') AS proactivity
FROM workspaces w LEFT JOIN users u ON u.id = w.owner_id
WHERE EXISTS (SELECT 1 FROM connections c WHERE c.workspace_id = w.id AND c.active)
ORDER BY w.id
""")
_ROLLUP_SQL = """
SELECT workspace_id, metric, (ts AT TIME ZONE 'UTC')::date, avg(value), count(*)
FROM metric_points WHERE workspace_id = ANY(%(ids)s) AND ts >= %(lo)s AND ts < %(hi)s
GROUP BY 1, 2, 3
"""
_FINDINGS_SQL = """
SELECT workspace_id, metric, today, mean, sd, n, (today - mean) / sd AS z
FROM (
    SELECT workspace_id, metric, anyIf(value, day = {day:Date}) AS today, countIf(day = {day:Date}) AS on_day,
           avgIf(value, day < {day:Date}) AS mean, stddevPopIf(value, day < {day:Date}) AS sd,
           countIf(day < {day:Date}) AS n
    FROM metric_days
    WHERE workspace_id IN {ids:Array(Int64)} AND day >= {lo:Date} AND day <= {day:Date}
    GROUP BY workspace_id, metric
)
WHERE on_day = 1 AND n >= {min_days:UInt32} AND sd > 0 AND abs((today - mean) / sd) >= {min_score:Float64}
ORDER BY workspace_id, abs(z) DESC, metric
LIMIT 5 BY workspace_id
"""
_REPLACE_SQL = text("DELETE FROM insights WHERE workspace_id = ANY(:ids) AND day = :day")
_INSERT_SQL = text(
    "INSERT INTO insights (workspace_id, day, rank, kind, metric, title, score, details, generator)"
    " VALUES (:workspace_id, :day, :rank, :kind, :metric, :title, :score, CAST(:details AS jsonb), :generator)"
)


@dataclass(frozen=True)
class Finding:
    workspace_id: int
    kind: str  # mover | anomaly
    metric: str
    title: str
    score: float  # higher is better; the same scale for every finding of one generator
    details: dict = field(default_factory=dict)


class Generator(Protocol):
    name: str

    def findings(self, workspace_ids: Sequence[int], day: date) -> list[Finding]:
        """Candidate findings of `day` for each of `workspace_ids`, any order, any number."""


def allowed(proactivity: str, scores: Sequence[float]) -> int:
    """How many of a workspace's findings (scores best first) it gets (see the module's table)."""
    if proactivity == "balanced":
        return min(len(scores), 3 if len(scores) >= 3 and scores[2] >= STRONG else 2)
    return min(len(scores), MOST[proactivity])


@dataclass
class TrailingBaseline:
    """The statistical default (see the module): rolls metric_points up per day into ClickHouse, then finds
    the day's movers against the trailing baseline in one query for all workspaces."""

    postgres: PostgresResource
    warehouse: WarehouseResource
    name: str = "trailing_baseline"

    def findings(self, workspace_ids: Sequence[int], day: date) -> list[Finding]:
        if not workspace_ids:
            return []
        lo = day - timedelta(days=BASELINE_DAYS)
        start, end = (datetime.combine(d, time(), UTC) for d in (lo, day + timedelta(days=1)))
        ids = list(workspace_ids)
        with self.warehouse.client() as ch:
            ch.command("DELETE FROM metric_days WHERE workspace_id IN {ids:Array(Int64)} AND day >= {lo:Date} "
                       "AND day <= {day:Date}", parameters={"ids": ids, "lo": lo, "day": day})
            copy_into(ch, "metric_days", ["workspace_id", "metric", "day", "value", "points"], self.postgres,
                      _ROLLUP_SQL, {"ids": ids, "lo": start, "hi": end})
            rows = ch.query(_FINDINGS_SQL, parameters={"ids": ids, "lo": lo, "day": day, "min_days": MIN_BASELINE_DAYS,
                                                       "min_score": MIN_SCORE}).result_rows
        return [Finding(workspace_id, "anomaly" if abs(z) >= STRONG else "mover", metric,
                        f"{metric} {'up' if z > 0 else 'down'} {abs(today - mean) / abs(mean):.0%} against its "
                        f"{n}-day average" if mean else f"{metric} at {today:g} against a {n}-day average of 0",
                        round(abs(z), 6), {"value": today, "baseline_mean": mean, "baseline_sd": sd,
                                           "baseline_days": n, "z": round(z, 6)})
                for workspace_id, metric, today, mean, sd, n, z in rows]


def generate(postgres: PostgresResource, generator: Generator, day: date) -> dict:
    """Replace `day`'s insights of every workspace with an active connection. Returns counts for run metadata:
    workspaces, insights, by_proactivity ({setting: workspaces})."""
    with postgres.begin() as conn:
        workspaces = dict(conn.execute(_WORKSPACES_SQL).all())
    findings: dict[int, list[Finding]] = {}
    for finding in generator.findings([w for w, p in workspaces.items() if p != "off"], day):
        findings.setdefault(finding.workspace_id, []).append(finding)
    rows = []
    for workspace_id, proactivity in workspaces.items():
        ranked = sorted(findings.get(workspace_id, []), key=lambda f: (-f.score, f.metric, f.kind))
        for rank, f in enumerate(ranked[:allowed(proactivity, [f.score for f in ranked])], start=1):
            rows.append({"workspace_id": workspace_id, "day": day, "rank": rank, "kind": f.kind, "metric": f.metric,
                         "title": f.title, "score": f.score, "details": json.dumps(f.details), "generator": generator.name})
    with postgres.begin() as conn:
        conn.execute(_REPLACE_SQL, {"ids": list(workspaces), "day": day})
        if rows:
            conn.execute(_INSERT_SQL, rows)
    by_setting: dict[str, int] = {}
    for proactivity in workspaces.values():
        by_setting[proactivity] = by_setting.get(proactivity, 0) + 1
    return {"workspaces": len(workspaces), "insights": len(rows), "by_proactivity": by_setting}
