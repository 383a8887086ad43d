"""Deterministic demo data for canvas alerts (seed 000): metric points and alert rules, loaded with COPY.

Five product metrics in ten workspaces over the last 24 hours. Workspaces 3 and 7 have an error and
latency spike in the last 15 minutes, so the first tick fires a few alerts; a handful of rules watch
the platform's own tables (failed builds, failed notifications, open dead letters), and one rule is
broken on purpose so `alert_rules.last_error` has something to show.
"""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pandas as pd

from ops_platform.demo.copying import copy_frames

# metric → (mean, spread) of its normal values
METRICS = {"errors": (2, 1.5), "signups": (5, 2), "revenue": (100, 30), "latency_ms": (250, 50),
           "active_users": (40, 10)}
WORKSPACES = range(1, 11)
SPIKING = {3, 7}  # workspaces whose errors and latency spike in the last 15 minutes
SPIKE_MINUTES = 15
HISTORY_HOURS = 24
# metric → (aggregation, window minutes, operator, threshold, severity) variants
TEMPLATES = {
    "errors": [("avg", 15, ">", 6, "WARN"), ("max", 5, ">=", 12, "WARN"), ("count", 60, "<", 1, "INFO")],
    "signups": [("avg", 60, "<", 1, "INFO"), ("sum", 1440, "<", 10, "INFO")],
    "revenue": [("min", 60, "<", -50, "WARN"), ("avg", 240, "<", 20, "WARN")],
    "latency_ms": [("max", 15, ">", 600, "SEV1"), ("avg", 30, ">", 450, "WARN")],
    "active_users": [("last", 30, "<", 1, "INFO"), ("avg", 60, ">", 200, "INFO")],
}
DOMAIN_RULES = [
    ("failed builds in the last hour", "builds.failed", "count", 60, ">=", 5, "WARN"),
    ("notification deliveries failing", "notifications.failed", "count", 60, ">=", 1, "SEV1"),
    ("dead letters waiting", "dead_letters.open", "last", 5, ">", 0, "WARN"),
]
BROKEN_RULE = ("demo: broken on purpose (unknown aggregation)", "points:errors", "median", 15, ">", 1, "WARN")
RULE_COLUMNS = ["workspace_id", "name", "metric", "aggregation", "window_minutes", "operator", "threshold",
                "cooldown_minutes", "severity"]


def generate_alerts(conn, rules: int = 200, points: int = 100_000, seed: int = 7,
                    now: datetime | None = None) -> dict[str, int]:
    """Replace alert_rules and metric_points (psycopg connection `conn`); return rows per table."""
    if rules < len(DOMAIN_RULES) + 1 or points < 0:
        raise ValueError(f"rules must be at least {len(DOMAIN_RULES) + 1} and points 0 or more")
    now = (now or datetime.now(UTC)).replace(second=0, microsecond=0)
    rng = np.random.default_rng(seed)
    conn.execute("TRUNCATE alert_rules, metric_points RESTART IDENTITY")
    copy_frames(conn, "metric_points", ["metric", "workspace_id", "ts", "value"], [_points(rng, points, now)])
    copy_frames(conn, "alert_rules", RULE_COLUMNS, [_rules(rules)])
    conn.execute("ANALYZE alert_rules, metric_points")
    return {"alert_rules": rules, "metric_points": points}


def _points(rng, n: int, now: datetime) -> pd.DataFrame:
    series = [(metric, workspace) for metric in METRICS for workspace in WORKSPACES]
    which = np.arange(n) % len(series)
    metric = np.array([s[0] for s in series])[which]
    workspace = np.array([s[1] for s in series])[which]
    seconds_ago = rng.uniform(0, HISTORY_HOURS * 3600, n)
    mean = np.array([METRICS[m][0] for m in metric], dtype=float)
    spread = np.array([METRICS[m][1] for m in metric], dtype=float)
    value = rng.normal(mean, spread)
    spiking = (np.isin(workspace, list(SPIKING)) & np.isin(metric, ["errors", "latency_ms"])
               & (seconds_ago < SPIKE_MINUTES * 60))
    value[spiking] *= 5
    value[metric == "errors"] = np.maximum(np.round(value[metric == "errors"]), 0)
    return pd.DataFrame({"metric": metric, "workspace_id": workspace,
                         "ts": pd.Timestamp(now) - pd.to_timedelta(seconds_ago, unit="s"),
                         "value": np.round(value, 3)})


def _rules(n: int) -> pd.DataFrame:
    rows = [(0, name, metric, agg, window, op, threshold, 60, severity)
            for name, metric, agg, window, op, threshold, severity in DOMAIN_RULES]
    series = [(metric, workspace) for metric in METRICS for workspace in WORKSPACES]
    for i in range(n - len(DOMAIN_RULES) - 1):
        metric, workspace = series[i % len(series)]
        variants = TEMPLATES[metric]
        agg, window, op, threshold, severity = variants[(i // len(series)) % len(variants)]
        cooldown = (30, 60, 120)[i % 3]
        rows.append((workspace, f"{metric} {agg} {window}m {op} {threshold} (ws {workspace})", f"points:{metric}",
                     agg, window, op, threshold, cooldown, severity))
    name, metric, agg, window, op, threshold, severity = BROKEN_RULE
    rows.append((1, name, metric, agg, window, op, threshold, 60, severity))
    return pd.DataFrame(rows, columns=RULE_COLUMNS)
