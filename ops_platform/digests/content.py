"""What a canvas digest (seed 000) holds, chosen by its `include` config.

Supported keys of `digests.include` (anything else is an error written to the row's last_error):

| key           | type       | section                                                                   |
|---------------|------------|---------------------------------------------------------------------------|
| alerts        | bool       | the workspace's alert rules triggered in the period (`alert_rules`)       |
| metrics       | [name,...] | per metric of the workspace: points, avg, min, max, last (`metric_points`) |
| incidents     | bool       | incidents open now, most severe first (`incidents`)                       |
| failed_runs   | bool       | failed job runs in the period, per job (`audit_log` run rows)             |
| period_hours  | int 1–744  | the period of a digest never sent before (default 24)                     |

The period is [last due time sent, this due time): consecutive digests neither overlap nor leave gaps.
Example: {"alerts": true, "metrics": ["revenue", "signups"], "incidents": true}.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError
from sqlalchemy import Connection, text

from ops_platform.settings import ConfigError

LIST_LIMIT = 20  # lines per section; the rest are counted

# One query per section, at most LIST_LIMIT lines; the window counts (OVER ()) give the section's full size.
ALERTS_SQL = text(
    "SELECT name, metric, last_value, operator, threshold, last_triggered_at, count(*) OVER () AS total"
    " FROM alert_rules WHERE workspace_id = :ws AND last_triggered_at >= :since AND last_triggered_at < :until"
    " ORDER BY last_triggered_at DESC LIMIT :limit")
METRICS_SQL = text(
    "SELECT metric, count(*) AS points, avg(value) AS avg, min(value) AS min, max(value) AS max,"
    " (array_agg(value ORDER BY ts DESC))[1] AS last FROM metric_points"
    " WHERE workspace_id = :ws AND metric = ANY(:metrics) AND ts >= :since AND ts < :until GROUP BY metric")
OPEN_INCIDENTS_SQL = text(
    "SELECT severity, title, created_at, count(*) OVER () AS total FROM incidents"
    " WHERE status = 'open' AND NOT archived"
    " ORDER BY array_position(ARRAY['SEV0', 'SEV1', 'WARN', 'INFO'], severity), created_at DESC LIMIT :limit")
FAILED_RUNS_SQL = text(
    "SELECT action, count(*) AS failures, max(ts) AS latest, sum(count(*)) OVER () AS total,"
    " count(*) OVER () AS jobs FROM audit_log"
    " WHERE action_type = 'run' AND NOT success AND ts >= :since AND ts < :until"
    " GROUP BY action ORDER BY failures DESC, action LIMIT :limit")


class DigestInclude(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)

    alerts: bool = False
    metrics: list[str] = Field(default_factory=list)
    incidents: bool = False
    failed_runs: bool = False
    period_hours: int = Field(default=24, ge=1, le=744)

    @property
    def sections(self) -> list[str]:
        return [name for name in ("alerts", "metrics", "incidents", "failed_runs") if getattr(self, name)]


def parse_include(raw: Any) -> DigestInclude:
    """The include config, or a ConfigError that says which key is wrong and what is supported."""
    supported = ", ".join(DigestInclude.model_fields)
    if not isinstance(raw, Mapping):
        raise ConfigError(f"include must be a JSON object with keys among: {supported}")
    try:
        include = DigestInclude.model_validate(dict(raw))
    except ValidationError as err:
        problems = "; ".join(
            f"unknown key {'.'.join(map(str, e['loc']))!r}" if e["type"] == "extra_forbidden"
            else f"{'.'.join(map(str, e['loc']))}: {e['msg']}"
            for e in err.errors()
        )
        raise ConfigError(f"include is invalid: {problems} (supported keys: {supported})") from None
    if not include.sections:
        raise ConfigError("include selects nothing; set at least one of alerts, metrics, incidents, failed_runs")
    return include


def digest_period(include: DigestInclude, last_sent_at: datetime | None, due_at: datetime) -> tuple[datetime, datetime]:
    return (last_sent_at or due_at - timedelta(hours=include.period_hours)), due_at


def build_body(conn: Connection, workspace_id: int, include: DigestInclude, since: datetime,
               until: datetime) -> tuple[str, dict]:
    """(text body, counts for the message meta). Each section is one set-wise query."""
    params = {"ws": workspace_id, "since": since, "until": until, "limit": LIST_LIMIT}
    parts, counts = [], {}
    if include.alerts:
        rows = conn.execute(ALERTS_SQL, params).all()
        counts["alerts"] = rows[0].total if rows else 0
        lines = [f"- {r.name}: {r.metric} = {_num(r.last_value)} ({r.operator} {_num(r.threshold)})"
                 f" at {r.last_triggered_at:%Y-%m-%d %H:%M} UTC" for r in rows]
        parts.append(_section(f"Alerts triggered ({counts['alerts']})", lines, counts["alerts"]))
    if include.metrics:
        found = {r.metric: r for r in conn.execute(METRICS_SQL, params | {"metrics": include.metrics})}
        lines = [f"- {m}: " + (f"last {_num(r.last)}, avg {_num(r.avg)}, min {_num(r.min)}, max {_num(r.max)}"
                               f" ({r.points} points)" if (r := found.get(m)) else "no data in the period")
                 for m in include.metrics]
        counts["metrics"] = len(found)
        parts.append("Metrics\n" + "\n".join(lines))
    if include.incidents:
        rows = conn.execute(OPEN_INCIDENTS_SQL, params).all()
        counts["open_incidents"] = rows[0].total if rows else 0
        lines = [f"- [{r.severity}] {r.title} (since {r.created_at:%Y-%m-%d %H:%M} UTC)" for r in rows]
        parts.append(_section(f"Open incidents ({counts['open_incidents']})", lines, counts["open_incidents"]))
    if include.failed_runs:
        rows = conn.execute(FAILED_RUNS_SQL, params).all()
        counts["failed_runs"] = int(rows[0].total) if rows else 0
        lines = [f"- {r.action}: {r.failures} failed, last at {r.latest:%Y-%m-%d %H:%M} UTC" for r in rows]
        parts.append(_section(f"Failed runs ({counts['failed_runs']})", lines, rows[0].jobs if rows else 0))
    return "\n\n".join(parts), counts


def _section(title: str, lines: list[str], total: int) -> str:
    if not lines:
        return f"{title}\n- none"
    if total > len(lines):
        lines = [*lines, f"- … and {total - len(lines)} more"]
    return title + "\n" + "\n".join(lines)


def _num(value: float | None) -> str:
    return "n/a" if value is None else f"{value:,.4g}" if abs(value) < 1e4 else f"{value:,.0f}"
