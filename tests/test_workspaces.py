"""Seed 000 workspaces: guest organisation cleanup (cascade) and daily insights (proactivity, ClickHouse default)."""

from __future__ import annotations

import random
import statistics
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import pytest
from sqlalchemy import text
from hypothesis import given, settings as hsettings, strategies as st

from helpers import sql
from ops_platform.assets.workspaces import insights
from ops_platform.jobs.workspaces import guest_cleanup_job
from ops_platform.workspaces.insights import MOST, STRONG, Finding, allowed, generate

NOW = datetime.now(UTC)


def organisation(postgres, name, is_guest, expires_at=None, created_at=NOW, proactivity="balanced"):
    """An organisation with one user, workspace, connection, insight, metric point, alert rule and digest."""
    [(org,)] = sql(postgres, "INSERT INTO organisations (name, is_guest, expires_at, created_at) "
                             "VALUES (:n, :g, :e, :c) RETURNING id", n=name, g=is_guest, e=expires_at, c=created_at)
    [(user,)] = sql(postgres, "INSERT INTO users (organisation_id, email, ai_proactivity) VALUES (:o, :e, :p) RETURNING id",
                    o=org, e=f"{name}@example.org", p=proactivity)
    [(ws,)] = sql(postgres, "INSERT INTO workspaces (organisation_id, owner_id, name) VALUES (:o, :u, :n) RETURNING id",
                  o=org, u=user, n=f"{name} ws")
    sql(postgres, "INSERT INTO connections (workspace_id, kind) VALUES (:w, 'postgres')", w=ws)
    sql(postgres, "INSERT INTO insights (workspace_id, day, rank, kind, metric, title, score, generator) "
                  "VALUES (:w, '2026-01-01', 1, 'mover', 'm', 't', 2.5, 'test')", w=ws)
    sql(postgres, "INSERT INTO metric_points (metric, workspace_id, ts, value) VALUES ('m', :w, now(), 1)", w=ws)
    sql(postgres, "INSERT INTO alert_rules (workspace_id, name, metric, aggregation, window_minutes, operator, threshold) "
                  "VALUES (:w, 'r', 'm', 'avg', 60, '>', 1)", w=ws)
    sql(postgres, "INSERT INTO digests (workspace_id, name, cron) VALUES (:w, 'd', '0 8 * * *')", w=ws)
    return org, ws


def rows_of(postgres, ws):
    """How many rows of each kind workspace `ws` (and its organisation) still has."""
    return sql(postgres, """
        SELECT (SELECT count(*) FROM workspaces WHERE id = :w), (SELECT count(*) FROM connections WHERE workspace_id = :w),
               (SELECT count(*) FROM insights WHERE workspace_id = :w), (SELECT count(*) FROM metric_points WHERE workspace_id = :w),
               (SELECT count(*) FROM alert_rules WHERE workspace_id = :w), (SELECT count(*) FROM digests WHERE workspace_id = :w)
    """, w=ws)[0]


def test_guest_cleanup_deletes_expired_guests_with_everything_of_theirs_and_touches_nothing_else(postgres, instance):
    gone = [organisation(postgres, "expired", True, NOW - timedelta(minutes=1)),
            organisation(postgres, "ttl-passed", True, None, NOW - timedelta(days=7, minutes=1))]
    kept = [organisation(postgres, "unexpired", True, NOW + timedelta(days=3)),
            organisation(postgres, "ttl-running", True, None, NOW - timedelta(days=6)),
            organisation(postgres, "customer", False, NOW - timedelta(days=30))]  # not a guest: expires_at means nothing
    platform_point = sql(postgres, "INSERT INTO metric_points (metric, workspace_id, ts, value) VALUES ('m', 0, now(), 1) RETURNING 1")
    before = {ws: rows_of(postgres, ws) for _, ws in kept}

    result = guest_cleanup_job.execute_in_process(instance=instance, resources={"postgres": postgres})

    output = next(e for e in result.all_events if e.event_type_value == "STEP_OUTPUT").event_specific_data.metadata
    assert output["deleted"].value == 2 and datetime.fromisoformat(output["cutoff"].value) >= NOW
    assert sorted(output["organisation_ids"].value) == sorted(org for org, _ in gone)
    assert all(rows_of(postgres, ws) == (0, 0, 0, 0, 0, 0) for _, ws in gone)
    assert {ws: rows_of(postgres, ws) for _, ws in kept} == before == {ws: (1, 1, 1, 1, 1, 1) for _, ws in kept}
    assert sql(postgres, "SELECT count(*) FROM users")[0][0] == 3 and platform_point
    assert sql(postgres, "SELECT count(*) FROM metric_points WHERE workspace_id = 0")[0][0] == 1

    again = guest_cleanup_job.execute_in_process(instance=instance, resources={"postgres": postgres})
    assert next(e for e in again.all_events if e.event_type_value == "STEP_OUTPUT").event_specific_data.metadata[
        "deleted"].value == 0


@pytest.mark.parametrize("proactivity, scores, expected", [
    ("off", [9, 8, 7], 0), ("low", [9, 8], 1), ("low", [], 0),
    ("balanced", [9, 8, STRONG], 3), ("balanced", [9, 8, STRONG - 0.01], 2), ("balanced", [9], 1),
    ("high", [9, 8, 7, 6, 5, 4], 5), ("high", [2.5, 2.1], 2),
])
def test_how_many_insights_each_proactivity_allows(proactivity, scores, expected):
    assert allowed(proactivity, scores) == expected


@hsettings(max_examples=200, deadline=None)
@given(proactivity=st.sampled_from(list(MOST)), scores=st.lists(st.floats(2, 50), max_size=8))
def test_allowed_is_never_more_than_the_setting_or_the_findings(proactivity, scores):
    scores = sorted(scores, reverse=True)
    n = allowed(proactivity, scores)
    assert 0 <= n <= min(MOST[proactivity], len(scores))
    if proactivity == "balanced" and len(scores) >= 2:
        assert n >= 2


class Fixed:
    """A second Generator: fixed findings, to check what `generate` does with any generator's output."""

    name = "fixed"

    def __init__(self, findings):
        self.asked, self._findings = [], findings

    def findings(self, workspace_ids, day):
        self.asked.append(sorted(workspace_ids))
        return [f for f in self._findings if f.workspace_id in workspace_ids]


def test_generate_counts_by_proactivity_ranks_best_first_and_is_idempotent(postgres):
    wss = {p: organisation(postgres, p, False, proactivity=p)[1] for p in ("off", "low", "balanced", "high")}
    _, idle = organisation(postgres, "idle", False, proactivity="high")
    sql(postgres, "UPDATE connections SET active = false WHERE workspace_id = :w", w=idle)
    findings = [Finding(ws, "mover", f"metric_{i}", f"t{i}", score) for ws in [*wss.values(), idle]
                for i, score in enumerate([2.2, 6.0, 3.5, 2.9, 4.1, 2.0])]
    generator, day = Fixed(findings), date(2026, 6, 1)

    counts = generate(postgres, generator, day)
    again = generate(postgres, generator, day)

    assert counts == again == {"workspaces": 4, "insights": 0 + 1 + 3 + 5,
                               "by_proactivity": {"off": 1, "low": 1, "balanced": 1, "high": 1}}
    assert generator.asked == [sorted([wss["low"], wss["balanced"], wss["high"]])] * 2  # neither off nor idle asked
    got = sql(postgres, "SELECT workspace_id, rank, score FROM insights WHERE day = :d ORDER BY workspace_id, rank", d=day)
    assert [(r.rank, r.score) for r in got if r.workspace_id == wss["high"]] == [(1, 6.0), (2, 4.1), (3, 3.5), (4, 2.9), (5, 2.2)]
    assert [r.score for r in got if r.workspace_id == wss["balanced"]] == [6.0, 4.1, 3.5]
    assert [r.score for r in got if r.workspace_id == wss["low"]] == [6.0]
    assert not [r for r in got if r.workspace_id in (wss["off"], idle)]


def test_the_default_generator_finds_movers_against_the_trailing_baseline_in_clickhouse(postgres, warehouse, instance):
    day = date(2026, 6, 1)
    _, ws = organisation(postgres, "acme", False, proactivity="high")
    _, quiet = organisation(postgres, "quiet", False, proactivity="high")
    sql(postgres, "DELETE FROM metric_points")
    rng = random.Random(7)
    points = []
    for offset in range(28, 0, -1):  # a steady baseline, a little noise
        at = datetime.combine(day - timedelta(days=offset), datetime.min.time(), UTC) + timedelta(hours=12)
        for metric, level in (("signups", 100), ("revenue", 5000), ("churn", 10)):
            for w in (ws, quiet):
                points.append({"m": metric, "w": w, "ts": at, "v": level + rng.uniform(-2, 2) * level / 100})
    at = datetime.combine(day, datetime.min.time(), UTC) + timedelta(hours=12)
    today = {("signups", ws): 160, ("revenue", ws): 5000, ("churn", ws): 4,  # signups up 60 %, churn down
             ("signups", quiet): 100, ("revenue", quiet): 5000, ("churn", quiet): 10}
    points += [{"m": m, "w": w, "ts": at, "v": v} for (m, w), v in today.items()]
    with postgres.begin() as conn:
        conn.execute(text("INSERT INTO metric_points (metric, workspace_id, ts, value) VALUES (:m, :w, :ts, :v)"), points)

    result = dg.materialize([insights], partition_key="2026-06-01", instance=instance,
                            resources={"postgres": postgres, "warehouse": warehouse})
    assert result.success
    got = sql(postgres, "SELECT workspace_id, rank, kind, metric, title, details FROM insights WHERE day = :d "
                        "ORDER BY workspace_id, rank", d=day)
    baseline = {m: [p["v"] for p in points if p["m"] == m and p["w"] == ws and p["ts"] < at] for m in ("signups", "churn")}
    z = {m: (today[(m, ws)] - statistics.fmean(v)) / statistics.pstdev(v) for m, v in baseline.items()}
    expected = sorted(z, key=lambda m: -abs(z[m]))  # computed here in Python, independently of ClickHouse
    assert [(r.workspace_id, r.rank, r.kind, r.metric) for r in got] == [
        (ws, 1, "anomaly", expected[0]), (ws, 2, "anomaly", expected[1])]  # revenue unmoved; `quiet` has nothing
    assert {r.metric: r.details["z"] for r in got} == pytest.approx(z, rel=1e-6)
    signups = next(r for r in got if r.metric == "signups")
    assert signups.title.startswith("signups up 6") and signups.details["baseline_days"] == 28
    dg.materialize([insights], partition_key="2026-06-01", instance=instance,
                   resources={"postgres": postgres, "warehouse": warehouse})
    assert sql(postgres, "SELECT count(*) FROM insights WHERE day = :d", d=day)[0][0] == 2
