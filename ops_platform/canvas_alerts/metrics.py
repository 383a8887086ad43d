"""The registry of named metrics a canvas alert rule may watch: queries in code, never SQL from a row.

A rule's `metric` is one of:
- `points:<name>`: the observations of metric `<name>` in `metric_points` (what the product records),
  per workspace: a rule sees the points of its own workspace_id;
- a domain metric below, computed from the platform's own tables. They are platform-wide and report
  workspace 0, so rules on them belong to workspace 0.

Every metric yields rows of (workspace_id, ts, value); a rule aggregates the values whose ts falls in
(now - window, now]. Event metrics give one row per event with value 1 (count or sum them); a gauge
gives one row at the evaluation time `:now` (read it with `last`).
"""

from __future__ import annotations

from dataclasses import dataclass

POINTS_PREFIX = "points:"
PLATFORM_WORKSPACE = 0


@dataclass(frozen=True)
class Metric:
    name: str
    description: str
    sql: str  # SELECT workspace_id, ts, value FROM ...; may use the bind parameter :now

    def rows_sql(self) -> str:
        """The metric's rows with uniform column types."""
        return f"SELECT workspace_id::bigint, ts::timestamptz, value::float8 FROM ({self.sql}) AS {self.alias}"

    @property
    def alias(self) -> str:
        return "m_" + "".join(c if c.isalnum() else "_" for c in self.name)


DOMAIN_METRICS: dict[str, Metric] = {m.name: m for m in [
    Metric("builds.failed", "1 per build that failed, at its completion (seed 002)",
           "SELECT 0 AS workspace_id, coalesce(completed_at, updated_at) AS ts, 1 AS value"
           " FROM builds WHERE status = 'failed'"),
    Metric("builds.duration_seconds", "duration of each finished build, at its completion",
           "SELECT 0 AS workspace_id, completed_at AS ts, duration_ms / 1000.0 AS value"
           " FROM builds WHERE completed_at IS NOT NULL AND duration_ms IS NOT NULL"),
    Metric("notifications.failed", "1 per notification whose delivery failed, at its creation",
           "SELECT 0 AS workspace_id, created_at AS ts, 1 AS value FROM notifications WHERE status = 'failed'"),
    Metric("dead_letters.open", "gauge: dead letters unresolved at the evaluation time",
           "SELECT 0 AS workspace_id, CAST(:now AS timestamptz) AS ts, count(*) AS value FROM dead_letters"
           " WHERE created_at <= CAST(:now AS timestamptz)"
           " AND (resolved_at IS NULL OR resolved_at > CAST(:now AS timestamptz))"),
]}


def is_points(metric: str) -> bool:
    return metric.startswith(POINTS_PREFIX) and len(metric) > len(POINTS_PREFIX)


def points_name(metric: str) -> str:
    return metric[len(POINTS_PREFIX):]


def known_metrics_text() -> str:
    """For error messages: what a rule's metric may be."""
    return f"{POINTS_PREFIX}<name> (metric_points) or one of {', '.join(sorted(DOMAIN_METRICS))}"


def metric_rows_sql(metric: str) -> tuple[str, dict]:
    """One metric's (workspace_id, ts, value) rows as (SQL, parameters); KeyError for an unknown name.

    Parameters besides :now are returned; the caller adds :now.
    """
    if is_points(metric):
        return ("SELECT workspace_id, ts, value FROM metric_points WHERE metric = :points_metric",
                {"points_metric": points_name(metric)})
    return DOMAIN_METRICS[metric].rows_sql(), {}


def domain_series_sql(names: list[str]) -> str:
    """The rows of the named domain metrics, tagged with their name, within (:since, :now].

    Names come from the registry only (unknown ones are a KeyError), so no SQL text ever comes
    from a rule row.
    """
    parts = [f"SELECT CAST('{DOMAIN_METRICS[name].name}' AS text) AS metric, workspace_id, ts, value"
             f" FROM ({DOMAIN_METRICS[name].rows_sql()}) AS rows_{i}"
             " WHERE ts > CAST(:since AS timestamptz) AND ts <= CAST(:now AS timestamptz)"
             for i, name in enumerate(sorted(set(names)))]
    if not parts:
        return "SELECT NULL::text AS metric, NULL::bigint AS workspace_id, NULL::timestamptz AS ts, NULL::float8 AS value" \
               " WHERE false"
    return "\nUNION ALL\n".join(parts)
