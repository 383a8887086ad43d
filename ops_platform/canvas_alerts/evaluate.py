"""Set-wise evaluation of every enabled canvas alert rule at one instant, in three statements
whatever the number of rules.

1. Validate: each enabled rule's problem (unknown metric, aggregation, operator or severity, a
   non-positive window, ...) is computed in SQL and written to `last_error`; a fixed rule has it
   cleared. Broken rules are skipped, the others go on.
2. Find the domain metrics valid rules use (only those tables are read) and their longest window.
3. Evaluate: the valid rules' distinct (metric, workspace, window) series are aggregated once each
   (an index range per series), joined back to the rules, compared with the operator and threshold.
   Every evaluated rule gets last_value and last_evaluated_at. What comes out are the crossings: a
   rule not in breach whose condition now holds (and whose cooldown has passed) is "triggered"; a rule
   in breach (`breached`) whose value no longer meets it is "resolved". A rule that stays in breach
   is neither: it notified when it crossed, not again every cooldown (issue 12).

Aggregations over (now - window, now]: avg, sum, min, max, count, last (the value with the latest
ts). An empty window has count 0 and sum 0; avg, min, max and last are NULL and never trigger.
A rule may trigger when it never did, or its last trigger is at least cooldown_minutes before now
(and strictly before now, so one instant fires a rule once even with no cooldown): the cooldown now
damps a rule that flaps in and out of breach. An empty window (NULL) or a NaN value changes nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from sqlalchemy import Connection, text

from ops_platform.canvas_alerts.metrics import DOMAIN_METRICS, POINTS_PREFIX, domain_series_sql, known_metrics_text

AGGREGATIONS = ("avg", "sum", "min", "max", "count", "last")
OPERATORS = (">", ">=", "<", "<=", "=", "!=")
SEVERITIES = ("SEV0", "SEV1", "WARN", "INFO")  # notifications.Severity (not imported: an import cycle)

# The first problem of a rule row `r`, as a sentence; NULL when the rule can be evaluated.
RULE_ERROR_SQL = """
CASE
    WHEN NOT ((r.metric LIKE :points_like AND length(r.metric) > length(:points_prefix))
              OR r.metric = ANY(CAST(:domain_metrics AS text[])))
        THEN format('unknown metric %L: expected %s', r.metric, CAST(:known_metrics AS text))
    WHEN r.metric = ANY(CAST(:domain_metrics AS text[])) AND r.workspace_id <> 0
        THEN format('metric %L is platform-wide (workspace 0), but the rule is for workspace %s',
                    r.metric, r.workspace_id)
    WHEN NOT r.aggregation = ANY(CAST(:aggregations AS text[]))
        THEN format('unknown aggregation %L: expected one of %s', r.aggregation,
                    array_to_string(CAST(:aggregations AS text[]), ', '))
    WHEN NOT r.operator = ANY(CAST(:operators AS text[]))
        THEN format('unknown operator %L: expected one of %s', r.operator,
                    array_to_string(CAST(:operators AS text[]), ' '))
    WHEN r.window_minutes <= 0 THEN format('window_minutes must be positive, got %s', r.window_minutes)
    WHEN r.cooldown_minutes < 0 THEN format('cooldown_minutes must be 0 or more, got %s', r.cooldown_minutes)
    WHEN r.threshold IN ('NaN', 'Infinity', '-Infinity') THEN format('threshold must be a finite number, got %s', r.threshold)
    WHEN NOT r.severity = ANY(CAST(:severities AS text[]))
        THEN format('unknown severity %L: expected one of %s', r.severity,
                    array_to_string(CAST(:severities AS text[]), ', '))
END"""

VALIDATE_SQL = text(f"""
WITH checked AS (
    SELECT r.id, {RULE_ERROR_SQL} AS error FROM alert_rules r WHERE r.enabled
), recorded AS (
    UPDATE alert_rules t SET last_error = c.error
    FROM checked c WHERE t.id = c.id AND t.last_error IS DISTINCT FROM c.error
    RETURNING t.id, t.last_error
)
SELECT count(*) AS enabled,
       coalesce(jsonb_object_agg(id, error) FILTER (WHERE error IS NOT NULL), '{{}}') AS broken,
       (SELECT coalesce(jsonb_agg(id), '[]') FROM recorded WHERE last_error IS NOT NULL) AS newly_broken
FROM checked
""")

# The domain metrics valid rules use, with their longest window: only those tables are read.
DOMAIN_WINDOWS_SQL = text(f"""
SELECT r.metric, max(r.window_minutes) AS longest FROM alert_rules r
WHERE r.enabled AND r.metric NOT LIKE :points_like AND ({RULE_ERROR_SQL}) IS NULL
GROUP BY r.metric
""")

# Sums (and so averages) are exact decimals: the result does not depend on the order rows are read,
# and ten points of 3.3 average 3.3, not 3.3000000000000003 (which is > 3.3).
# `last` is the value at the latest ts (ties: the larger value), as the max of [epoch, value] pairs:
# no sort per series.
_AGGREGATES = """
    SELECT count(*) AS n, sum(s.value::numeric) AS exact_sum, min(s.value) AS min, max(s.value) AS max,
           (max(ARRAY[extract(epoch FROM s.ts)::float8, s.value]))[2] AS last"""
# Series of broken rules are aggregated too (harmlessly: an unknown metric has no rows, a window of
# 0 is empty) and dropped after the join. Filtering before it would hide the row counts from the
# planner, which then re-aggregates every series once per rule (a quadratic plan).
_IN_WINDOW = ("s.workspace_id = w.workspace_id AND s.ts <= CAST(:now AS timestamptz)"
              " AND s.ts > CAST(:now AS timestamptz) - make_interval(mins => w.window_minutes)")

EVALUATE_SQL = f"""
WITH rules AS MATERIALIZED (
    SELECT r.id, r.workspace_id, r.metric, r.aggregation, r.window_minutes, r.operator, r.threshold,
           r.cooldown_minutes, r.last_triggered_at, r.breached, {RULE_ERROR_SQL} AS error
    FROM alert_rules r WHERE r.enabled
), series AS MATERIALIZED (
    SELECT DISTINCT metric, workspace_id, window_minutes FROM rules
), domain AS MATERIALIZED (
    {{domain}}
), aggregates AS MATERIALIZED (
    SELECT w.metric, w.workspace_id, w.window_minutes, a.*
    FROM series w CROSS JOIN LATERAL ({_AGGREGATES}
        FROM metric_points s
        WHERE s.metric = substr(w.metric, length(:points_prefix) + 1) AND {_IN_WINDOW}
    ) a
    WHERE w.metric LIKE :points_like
    UNION ALL
    SELECT w.metric, w.workspace_id, w.window_minutes, a.*
    FROM series w CROSS JOIN LATERAL ({_AGGREGATES}
        FROM domain s WHERE s.metric = w.metric AND {_IN_WINDOW}
    ) a
    WHERE w.metric NOT LIKE :points_like
), evaluated AS (
    SELECT r.id, r.operator, r.threshold, r.cooldown_minutes, r.last_triggered_at, r.breached,
           CASE r.aggregation WHEN 'avg' THEN (a.exact_sum / nullif(a.n, 0))::float8
                              WHEN 'sum' THEN coalesce(a.exact_sum, 0)::float8 WHEN 'min' THEN a.min
                              WHEN 'max' THEN a.max WHEN 'count' THEN a.n WHEN 'last' THEN a.last END AS value
    FROM rules r JOIN aggregates a USING (metric, workspace_id, window_minutes)
    WHERE r.error IS NULL
), recorded AS (
    UPDATE alert_rules t SET last_value = e.value, last_evaluated_at = CAST(:now AS timestamptz)
    FROM evaluated e WHERE t.id = e.id
)
SELECT id, value, in_breach FROM (
    SELECT e.*, CASE e.operator WHEN '>' THEN e.value > e.threshold WHEN '>=' THEN e.value >= e.threshold
                                WHEN '<' THEN e.value < e.threshold WHEN '<=' THEN e.value <= e.threshold
                                WHEN '=' THEN e.value = e.threshold WHEN '!=' THEN e.value <> e.threshold END AS in_breach
    FROM evaluated e
    WHERE e.value NOT IN ('NaN', 'Infinity', '-Infinity')  -- a NaN point changes nothing (last_value shows it)
) c
WHERE (c.in_breach AND NOT c.breached
       AND (c.last_triggered_at IS NULL
            OR (c.last_triggered_at < CAST(:now AS timestamptz)
                AND c.last_triggered_at <= CAST(:now AS timestamptz) - make_interval(mins => c.cooldown_minutes))))
   OR (NOT c.in_breach AND c.breached)
ORDER BY c.id
"""

@dataclass(frozen=True)
class Trigger:
    rule_id: int
    value: float


@dataclass(frozen=True)
class Evaluation:
    at: datetime
    enabled: int  # enabled rules seen
    triggered: list[Trigger] = field(default_factory=list)  # crossed into breach
    resolved: list[Trigger] = field(default_factory=list)  # were in breach, cleared
    broken: dict[int, str] = field(default_factory=dict)  # rule id → why it was skipped
    newly_broken: frozenset[int] = frozenset()  # broken rules whose error changed at this evaluation

    @property
    def evaluated(self) -> int:
        return self.enabled - len(self.broken)


def rule_params() -> dict:
    """The bind parameters of RULE_ERROR_SQL: what the registry and the evaluator accept."""
    return {"points_prefix": POINTS_PREFIX, "points_like": POINTS_PREFIX + "%", "domain_metrics": sorted(DOMAIN_METRICS),
            "known_metrics": known_metrics_text(), "aggregations": list(AGGREGATIONS), "operators": list(OPERATORS),
            "severities": list(SEVERITIES)}


def evaluate_rules(conn: Connection, now: datetime) -> Evaluation:
    """Validate and evaluate every enabled rule at `now` (timezone-aware) in the caller's transaction."""
    if now.tzinfo is None:
        raise ValueError("now must be timezone-aware (e.g. datetime.now(UTC))")
    params = rule_params() | {"now": now}
    enabled, broken, newly_broken = conn.execute(VALIDATE_SQL, params).one()
    domain = dict(conn.execute(DOMAIN_WINDOWS_SQL, params).all())
    longest = max(domain.values(), default=0)
    statement = text(EVALUATE_SQL.format(domain=domain_series_sql(list(domain))))
    rows = conn.execute(statement, params | {"since": now - timedelta(minutes=longest)}).all()
    return Evaluation(at=now, enabled=enabled, triggered=[Trigger(r.id, r.value) for r in rows if r.in_breach],
                      resolved=[Trigger(r.id, r.value) for r in rows if not r.in_breach],
                      broken={int(k): v for k, v in sorted(_json(broken).items(), key=lambda kv: int(kv[0]))},
                      newly_broken=frozenset(_json(newly_broken)))


def _json(value):
    """A jsonb value as Python (psycopg parses it; a driver returning text is parsed here)."""
    return json.loads(value) if isinstance(value, str) else value
