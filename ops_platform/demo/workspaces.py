"""Deterministic demo data for seed 000 workspaces and seed 004 FinOps (small: plain INSERTs).

Three customer organisations own workspaces 1–10 (the ids the canvas alert demo's metric points use),
one owner each with another AI proactivity (off, low, balanced, high); workspace 10's only connection is
inactive, so it gets no insights. Two guest organisations: one expired yesterday (the guest cleanup
deletes it and its workspace 11 on its first run), one that expires in 5 days. Four daily KPIs per
workspace over 29 days, with yesterday's moves in workspaces 2, 3 and 5, so the daily insights have
findings to rank. AI usage and infrastructure bill lines for three tenants over the last 7 days.
"""

from __future__ import annotations

from datetime import datetime, time, timedelta

import numpy as np

KPIS = {"orders": (120, 6), "sessions": (2400, 90), "conversion_pct": (3.2, 0.15), "refunds": (4, 0.8)}
MOVES = {(2, "orders"): 1.6, (3, "refunds"): 3.0, (3, "sessions"): 0.7, (5, "conversion_pct"): 1.4}  # × yesterday
PROACTIVITY = ["off", "low", "balanced", "high"]
TENANTS = {"acme": 12.0, "globex": 4.0, "initech": 1.5}  # tenant → typical AI spend a day (USD)
DAYS = 29


def generate_workspaces(conn, rng: np.random.Generator, now: datetime) -> dict[str, int]:
    """Insert the demo organisations, users, workspaces, connections, KPI points, AI usage and bill lines
    (psycopg connection `conn`, tables already emptied). Returns rows per table."""
    orgs = [("Acme Analytics", False, None), ("Globex", False, None), ("Initech", False, None),
            ("guest: expired", True, now - timedelta(days=1)), ("guest: trying it out", True, now + timedelta(days=5))]
    for name, guest, expires in orgs:
        conn.execute("INSERT INTO organisations (name, is_guest, expires_at, created_at) VALUES (%s, %s, %s, %s)",
                     (name, guest, expires, (expires or now) - timedelta(days=7)))
    owners = []
    for ws in range(1, 12):
        org = 4 if ws == 11 else 1 + (ws - 1) % 3
        conn.execute("INSERT INTO users (organisation_id, email, ai_proactivity) VALUES (%s, %s, %s)",
                     (org, f"owner{ws}@example.org", PROACTIVITY[ws % 4]))
        owners.append(ws)
        conn.execute("INSERT INTO workspaces (organisation_id, owner_id, name) VALUES (%s, %s, %s)",
                     (org, ws, f"workspace {ws}"))
        conn.execute("INSERT INTO connections (workspace_id, kind, active) VALUES (%s, %s, %s)",
                     (ws, ("postgres", "bigquery", "stripe")[ws % 3], ws != 10))
    today = now.date()
    points = []
    for ws in range(1, 12):
        for metric, (mean, spread) in KPIS.items():
            for back in range(DAYS, 0, -1):
                day = today - timedelta(days=back)
                value = rng.normal(mean, spread) * (MOVES.get((ws, metric), 1.0) if back == 1 else 1.0)
                points.append((metric, ws, datetime.combine(day, time(12), now.tzinfo), round(float(value), 3)))
    with conn.cursor() as cur:
        cur.executemany("INSERT INTO metric_points (metric, workspace_id, ts, value) VALUES (%s, %s, %s, %s)", points)
        usage = [(tenant, "gpt-4o-mini" if i % 3 else "claude-sonnet", int(rng.integers(200, 4000)),
                  int(rng.integers(50, 1500)), round(float(spend / 20 * rng.uniform(0.5, 1.5)), 6),
                  now - timedelta(days=float(rng.uniform(0, 7))))
                 for tenant, spend in TENANTS.items() for i in range(140)]
        cur.executemany("INSERT INTO ai_usage (tenant, model, input_tokens, output_tokens, cost_usd, occurred_at)"
                        " VALUES (%s, %s, %s, %s, %s, %s)", usage)
        bills = [(today - timedelta(days=back), tenant, service, round(float(cost * rng.uniform(0.8, 1.2)), 4))
                 for back in range(1, 8) for tenant in TENANTS
                 for service, cost in (("compute", 18.0), ("storage", 2.5), ("egress", 0.9))]
        cur.executemany("INSERT INTO infra_costs (day, tenant, service, cost_usd) VALUES (%s, %s, %s, %s)", bills)
    return {"organisations": len(orgs), "users": len(owners), "workspaces": 11, "connections": 11,
            "kpi_points": len(points), "ai_usage": len(usage), "infra_costs": len(bills)}
