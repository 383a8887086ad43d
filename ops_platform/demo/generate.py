"""Deterministic demo data for the seed-002 domain, loaded with COPY in bounded chunks.

`scale` is the number of tasks; the other tables follow from it. The same (scale, seed, now)
always gives the same rows. A few builds are left running: some for longer than 30 minutes, so
the stalled-builds sensor has something to do on the first tick.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from ops_platform.demo.alerts import generate_alerts
from ops_platform.demo.copying import copy_frames
from ops_platform.demo.workspaces import generate_workspaces
from ops_platform.resources.postgres import PostgresResource

AGENTS = [
    "SUN", "MERCURY", "VENUS", "EARTH", "MARS", "JUPITER", "SATURN", "URANUS", "NEPTUNE", "PLUTO", "TITAN",
    "EUROPA", "IO", "GANYMEDE", "CALLISTO", "ENCELADUS", "MIMAS", "TRITON", "CHARON", "ATLAS", "ANDROMEDA",
]  # seed 002 has 21 agents
CHUNK_ROWS = 250_000
DEMO_TABLES = ["agent_activity_feed", "executions", "tasks", "builds", "user_profiles", "agent_stats_cache", "agents",
               "campaign_usage", "volunteer_activities", "credit_ledger", "campaign_seats", "volunteers", "campaigns",
               "ai_budget_history", "ai_budgets", "insights", "connections", "workspaces", "users", "organisations",
               "ai_usage", "infra_costs"]
ACTIVITY_TYPES = ["volunteering", "mentoring", "event", "workshop"]


def generate(postgres: PostgresResource, scale: int = 100_000, seed: int = 7, now: datetime | None = None) -> dict[str, int]:
    """Replace the demo tables' contents; return rows per table."""
    if scale < 1:
        raise ValueError("scale is the number of tasks and must be at least 1")
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    rng = np.random.default_rng(seed)
    counts = {
        "agents": len(AGENTS),
        "tasks": scale,
        "executions": scale,
        "builds": max(60, scale // 20),
        "agent_activity_feed": max(100, scale // 2),
        "user_profiles": max(100, scale // 100),
    }
    with postgres.raw() as conn:
        conn.execute(f"TRUNCATE {', '.join(DEMO_TABLES)} RESTART IDENTITY CASCADE")
        copy_frames(conn, "agents", ["name"], [pd.DataFrame({"name": AGENTS})])
        copy_frames(conn, "tasks", ["agent_name", "title", "status", "created_at"], _tasks(rng, counts["tasks"], now))
        copy_frames(conn, "executions", ["agent_name", "task_id", "duration_ms", "ts"],
              _executions(rng, counts["executions"], scale, now))
        copy_frames(conn, "builds", ["prd_name", "status", "started_at", "completed_at", "duration_ms", "error", "cost_usd", "meta"],
              [_builds(rng, counts["builds"], now)])
        copy_frames(conn, "agent_activity_feed", ["agent_name", "event_type", "details", "ts"],
              _activity(rng, counts["agent_activity_feed"], now))
        copy_frames(conn, "user_profiles", ["email", "last_active_at"], [_users(rng, counts["user_profiles"], now)])
        counts |= _campaign_domain(conn, rng, scale, now)
        counts |= generate_alerts(conn, rules=200, points=max(10_000, scale), seed=seed, now=now)
        counts |= generate_workspaces(conn, rng, now)  # after the alerts: they replace metric_points
        conn.execute("ANALYZE")
    return counts




def _ago(rng, n: int, now: datetime, max_days: float) -> pd.DatetimeIndex:
    seconds = rng.uniform(0, max_days * 86400, n)
    return pd.DatetimeIndex(pd.Timestamp(now) - pd.to_timedelta(seconds, unit="s"))


def _chunked(n: int):
    for start in range(0, n, CHUNK_ROWS):
        yield start, min(CHUNK_ROWS, n - start)


def _tasks(rng, n: int, now: datetime):
    statuses = np.array(["done", "failed", "running", "pending"])
    for start, size in _chunked(n):
        yield pd.DataFrame({
            "agent_name": np.array(AGENTS)[rng.integers(0, len(AGENTS), size)],
            "title": [f"task {i}" for i in range(start + 1, start + size + 1)],
            "status": statuses[rng.choice(4, size, p=[0.78, 0.12, 0.04, 0.06])],
            "created_at": _ago(rng, size, now, 30),
        })


def _executions(rng, n: int, tasks: int, now: datetime):
    for _, size in _chunked(n):
        yield pd.DataFrame({
            "agent_name": np.array(AGENTS)[rng.integers(0, len(AGENTS), size)],
            "task_id": rng.integers(1, tasks + 1, size),
            "duration_ms": rng.lognormal(9.5, 0.8, size).astype(np.int64),
            "ts": _ago(rng, size, now, 30),
        })


def _builds(rng, n: int, now: datetime) -> pd.DataFrame:
    started = _ago(rng, n, now, 60)
    status = np.array(["completed", "failed"])[rng.choice(2, n, p=[0.85, 0.15])].astype(object)
    duration = rng.lognormal(10.7, 0.6, n).astype(np.int64)
    completed = started + pd.to_timedelta(duration, unit="ms")
    # The last rows are running: half of them for less than 30 minutes, half stalled for longer.
    running = max(4, n // 100)
    minutes = np.concatenate([rng.uniform(1, 25, running // 2), rng.uniform(35, 240, running - running // 2)])
    started = started.to_numpy().copy()
    started[-running:] = (pd.Timestamp(now) - pd.to_timedelta(minutes, unit="m")).to_numpy()
    status[-running:] = "running"
    frame = pd.DataFrame({
        "prd_name": [f"prd-{i:05d}" for i in range(1, n + 1)],
        "status": status,
        "started_at": pd.DatetimeIndex(started),
        "completed_at": completed,
        "duration_ms": duration,
        "error": np.where(status == "failed", "tests failed", None),
        "cost_usd": np.round(rng.uniform(0.05, 40, n), 2),
        "meta": [f'{{"branch": "feature/{i % 17}", "retries": {i % 3}}}' for i in range(n)],
    })
    frame.loc[frame.status == "running", ["completed_at", "duration_ms"]] = None
    frame["duration_ms"] = frame["duration_ms"].astype("Int64")
    return frame


def _activity(rng, n: int, now: datetime):
    events = np.array(["task_started", "task_completed", "task_failed", "build_started"])
    for start, size in _chunked(n):
        yield pd.DataFrame({
            "agent_name": np.array(AGENTS)[rng.integers(0, len(AGENTS), size)],
            "event_type": events[rng.integers(0, 4, size)],
            "details": [f"event {i}" for i in range(start + 1, start + size + 1)],
            "ts": _ago(rng, size, now, 14),
        })


def _users(rng, n: int, now: datetime) -> pd.DataFrame:
    return pd.DataFrame({
        "email": [f"user{i}@example.com" for i in range(1, n + 1)],
        "last_active_at": _ago(rng, n, now, 180),
    })


def _campaign_domain(conn, rng, scale: int, now: datetime) -> dict[str, int]:
    """Seed 004: campaigns in every status, seats, a credit ledger, volunteer activities, AI budgets."""
    n_campaigns, n_volunteers = max(20, scale // 500), max(200, scale // 50)
    today = pd.Timestamp(now).normalize()
    starts = today + pd.to_timedelta(rng.integers(-90, 30, n_campaigns), unit="D")
    campaigns = pd.DataFrame({
        "name": [f"campaign {i}" for i in range(1, n_campaigns + 1)],
        "status": "scheduled",
        "starts_on": starts.strftime("%Y-%m-%d"),
        "ends_on": (starts + pd.to_timedelta(rng.integers(30, 120, n_campaigns), unit="D")).strftime("%Y-%m-%d"),
        "seat_capacity": rng.integers(10, 60, n_campaigns),
        "credit_budget": np.round(rng.uniform(500, 5000, n_campaigns), 2),
        "created_at": pd.DatetimeIndex(starts - pd.Timedelta(days=14)),
    })
    campaigns.loc[::10, "status"] = "draft"
    copy_frames(conn, "campaigns", list(campaigns.columns), [campaigns])
    copy_frames(conn, "volunteers", ["name"], [pd.DataFrame({"name": [f"volunteer {i}" for i in range(1, n_volunteers + 1)]})])
    n_seats = int(campaigns.seat_capacity.sum() * 0.8)
    seat_campaign = rng.integers(1, n_campaigns + 1, n_seats)
    assigned = _ago(rng, n_seats, now, 60)
    released = pd.Series(assigned + pd.to_timedelta(rng.integers(1, 40, n_seats), unit="D")).where(rng.random(n_seats) < 0.3)
    seats = pd.DataFrame({"campaign_id": seat_campaign, "volunteer_id": rng.integers(1, n_volunteers + 1, n_seats),
                          "assigned_at": assigned, "released_at": pd.DatetimeIndex(released)})
    copy_frames(conn, "campaign_seats", list(seats.columns), [seats])
    n_ledger = n_campaigns * 20
    ledger = pd.DataFrame({"campaign_id": rng.integers(1, n_campaigns + 1, n_ledger),
                           "amount": np.round(rng.uniform(5, 400, n_ledger), 2), "kind": "spend",
                           "created_at": _ago(rng, n_ledger, now, 60)})
    copy_frames(conn, "credit_ledger", list(ledger.columns), [ledger])
    n_activities = max(1_000, scale // 2)
    activities = pd.DataFrame({
        "volunteer_id": rng.integers(1, n_volunteers + 1, n_activities),
        "campaign_id": rng.integers(1, n_campaigns + 1, n_activities),
        "activity_type": np.array(ACTIVITY_TYPES)[rng.integers(0, len(ACTIVITY_TYPES), n_activities)],
        "hours": np.round(rng.uniform(0.5, 8, n_activities), 2),
        "occurred_at": _ago(rng, n_activities, now, 120),
    })
    copy_frames(conn, "volunteer_activities", list(activities.columns), [activities])
    budgets = pd.DataFrame({"scope": ["q2q-ai", "q2q-ai", "reports", "reports"], "period": ["daily", "monthly"] * 2,
                            "limit_usd": [50, 1000, 20, 400], "spent_usd": [12.5, 310, 3, 95],
                            "period_start": [(today - pd.Timedelta(days=1)).strftime("%Y-%m-%d"),
                                             today.replace(day=1).strftime("%Y-%m-%d")] * 2})
    copy_frames(conn, "ai_budgets", list(budgets.columns), [budgets])
    return {"campaigns": n_campaigns, "volunteers": n_volunteers, "campaign_seats": n_seats,
            "credit_ledger": n_ledger, "volunteer_activities": n_activities, "ai_budgets": len(budgets)}
