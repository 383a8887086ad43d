"""Seed 004 campaign and impact assets: seat and credit usage, hourly metric snapshots, VIS scores."""

import dagster as dg
from sqlalchemy import text

from ops_platform.framework.controls import WRITE_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WAREHOUSE_POOL, WarehouseResource
from ops_platform.sync.engine import copy_into

HOURLY = dg.HourlyPartitionsDefinition(start_date="2025-01-01-00:00")
DAILY_SCORES = dg.DailyPartitionsDefinition(start_date="2025-01-01")
COMMON = dict(op_tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY, group_name="campaigns")

SEAT_USAGE_SQL = text("""
INSERT INTO campaign_usage (campaign_id, snapshot_hour, seats_used, seat_capacity, seat_utilisation)
SELECT c.id, date_trunc('hour', now()), count(s.id), c.seat_capacity, round(100.0 * count(s.id) / c.seat_capacity, 2)
FROM campaigns c LEFT JOIN campaign_seats s ON s.campaign_id = c.id AND s.released_at IS NULL
WHERE c.status <> 'draft' GROUP BY c.id
ON CONFLICT (campaign_id, snapshot_hour) DO UPDATE SET seats_used = EXCLUDED.seats_used,
    seat_capacity = EXCLUDED.seat_capacity, seat_utilisation = EXCLUDED.seat_utilisation
RETURNING seat_utilisation
""")
CREDIT_USAGE_SQL = text("""
INSERT INTO campaign_usage (campaign_id, snapshot_hour, credits_used, credit_budget, credit_utilisation)
SELECT c.id, date_trunc('hour', now()), coalesce(sum(l.amount), 0), c.credit_budget,
       CASE WHEN c.credit_budget = 0 THEN NULL ELSE round(100.0 * coalesce(sum(l.amount), 0) / c.credit_budget, 2) END
FROM campaigns c LEFT JOIN credit_ledger l ON l.campaign_id = c.id
WHERE c.status <> 'draft' GROUP BY c.id
ON CONFLICT (campaign_id, snapshot_hour) DO UPDATE SET credits_used = EXCLUDED.credits_used,
    credit_budget = EXCLUDED.credit_budget, credit_utilisation = EXCLUDED.credit_utilisation
RETURNING credit_utilisation
""")


def _usage(postgres: PostgresResource, statement) -> dict:
    with postgres.begin() as conn:
        values = [r[0] for r in conn.execute(statement)]
    known = [float(v) for v in values if v is not None]
    return {"campaigns": len(values), "max_utilisation_pct": max(known, default=0.0),
            "at_or_over_100_pct": sum(v >= 100 for v in known)}


@dg.asset(kinds={"postgres"}, deps=[["postgres", "campaigns"]], **COMMON, description=(
    "Seat usage per non-draft campaign for the current hour (campaign_usage): seats_used = seats "
    "assigned and not released; seat_utilisation = seats_used / seat_capacity × 100."))
def seat_usage(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    guard_run(context, postgres)
    return dg.MaterializeResult(metadata=_usage(postgres, SEAT_USAGE_SQL))


@dg.asset(kinds={"postgres"}, deps=[["postgres", "campaigns"]], **COMMON, description=(
    "Credit usage per non-draft campaign for the current hour (campaign_usage): credits_used = sum of the "
    "credit ledger (spends positive, refunds negative); credit_utilisation = credits_used / credit_budget "
    "× 100, NULL when the budget is 0 (no limit)."))
def credit_usage(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    guard_run(context, postgres)
    return dg.MaterializeResult(metadata=_usage(postgres, CREDIT_USAGE_SQL))


# For every hour H in the window and every campaign created before H ended, the state at the end of H.
METRICS_SQL = """
WITH hours AS (
    SELECT h, h + interval '1 hour' AS h_end
    FROM generate_series(%(lo)s::timestamptz, %(hi)s::timestamptz - interval '1 hour', interval '1 hour') AS h
)
SELECT to_char(h AT TIME ZONE 'UTC', 'YYYY-MM-DD HH24:MI:SS'), c.id, campaign_status_at(c.id, c.status, h_end),
       (SELECT count(*) FROM campaign_seats s WHERE s.campaign_id = c.id AND s.assigned_at < h_end
                                               AND (s.released_at IS NULL OR s.released_at >= h_end)),
       c.seat_capacity,
       (SELECT coalesce(sum(amount), 0) FROM credit_ledger l WHERE l.campaign_id = c.id AND l.created_at < h_end),
       c.credit_budget,
       (SELECT count(DISTINCT volunteer_id) FROM volunteer_activities a
         WHERE a.campaign_id = c.id AND a.occurred_at >= h AND a.occurred_at < h_end),
       (SELECT coalesce(sum(hours), 0) FROM volunteer_activities a
         WHERE a.campaign_id = c.id AND a.occurred_at >= h AND a.occurred_at < h_end)
FROM hours CROSS JOIN campaigns c
WHERE c.created_at < h_end AND campaign_status_at(c.id, c.status, h_end) <> 'draft'
ORDER BY h, c.id
"""
METRICS_COLUMNS = ["snapshot_hour", "campaign_id", "status", "seats_used", "seat_capacity", "credits_used",
                   "credit_budget", "active_volunteers", "hours_logged"]


@dg.asset(key=["warehouse", "campaign_metrics_hourly"], kinds={"clickhouse", "postgres"}, partitions_def=HOURLY,
          backfill_policy=dg.BackfillPolicy.single_run(), pool=WAREHOUSE_POOL,
          deps=[["postgres", "campaigns"]], **COMMON, description=(
              "Hourly campaign snapshots in ClickHouse (seed 004 aggregate-campaign-metrics), one row per campaign "
              "and hour, as of the end of the hour: seats held, capacity, credits spent to date, budget, distinct "
              "volunteers with activity in the hour, hours logged in the hour, and the status the campaign had then "
              "(from its campaign.status.changed events), so a backfilled hour is reproducible. A run replaces "
              "exactly its hours."))
def campaign_metrics_hourly(context: dg.AssetExecutionContext, postgres: PostgresResource,
                            warehouse: WarehouseResource) -> dg.MaterializeResult:
    guard_run(context, postgres)
    window = context.partition_time_window
    rows = _replace_window(warehouse, postgres, "campaign_metrics_hourly", "snapshot_hour", METRICS_COLUMNS,
                           METRICS_SQL, window.start, window.end, {})
    return dg.MaterializeResult(metadata={"rows": rows, "hours": int((window.end - window.start).total_seconds() // 3600)})


# Seed 004 VIS: every activity contributes hours × type weight, halved every `half_life_days` of age,
# age measured from the end of the scored day. Only activities before that moment count, so the
# score of a past day can be recomputed exactly.
VIS_WEIGHTS = {"mentoring": 1.5, "volunteering": 1.0, "event": 0.5}  # any other type weighs 1.0
VIS_SQL = """
WITH days AS (SELECT d::date AS d, (d + interval '1 day') AS d_end
              FROM generate_series(%(lo)s::date, %(hi)s::date - 1, interval '1 day') AS d),
     weights(activity_type, weight) AS (VALUES {weights})
SELECT days.d, a.volunteer_id,
       sum(a.hours * coalesce(w.weight, 1.0)
           * power(0.5, extract(epoch FROM days.d_end - a.occurred_at) / 86400.0 / %(half_life)s)),
       count(*), sum(a.hours), %(half_life)s
FROM days JOIN volunteer_activities a ON a.occurred_at < days.d_end
LEFT JOIN weights w ON w.activity_type = a.activity_type
GROUP BY days.d, a.volunteer_id ORDER BY days.d, a.volunteer_id
""".replace("{weights}", ", ".join(f"('{k}', {v})" for k, v in VIS_WEIGHTS.items()))
VIS_COLUMNS = ["score_date", "volunteer_id", "score", "activities", "hours_total", "half_life_days"]


class VisConfig(dg.Config):
    half_life_days: float = 90.0


@dg.asset(key=["warehouse", "vis_scores"], kinds={"clickhouse", "postgres"}, partitions_def=DAILY_SCORES,
          backfill_policy=dg.BackfillPolicy.single_run(), pool=WAREHOUSE_POOL,
          deps=[["postgres", "volunteer_activities"]], **COMMON, description=(
              "Volunteer Impact Score per volunteer and day (seed 004): Σ hours × weight(type) × 0.5^(age / "
              f"half_life_days), weights {VIS_WEIGHTS} (others 1.0), age from the end of the day, half-life 90 "
              "days unless configured. Computed set-wise in Postgres; a run replaces exactly its days."))
def vis_scores(context: dg.AssetExecutionContext, config: VisConfig, postgres: PostgresResource,
               warehouse: WarehouseResource) -> dg.MaterializeResult:
    guard_run(context, postgres)
    if config.half_life_days <= 0:
        raise dg.Failure(f"half_life_days must be positive, got {config.half_life_days}", allow_retries=False)
    window = context.partition_time_window
    rows = _replace_window(warehouse, postgres, "vis_scores", "score_date", VIS_COLUMNS, VIS_SQL,
                           window.start, window.end, {"half_life": config.half_life_days})
    return dg.MaterializeResult(metadata={"rows": rows, "half_life_days": config.half_life_days})


def _replace_window(warehouse, postgres, table, time_column, columns, query, start, end, params) -> int:
    """Delete the window's rows in ClickHouse, then stream the recomputed ones in."""
    with warehouse.client() as ch:
        ch.command(f"DELETE FROM {table} WHERE {time_column} >= {{lo:DateTime64(6, 'UTC')}} "
                   f"AND {time_column} < {{hi:DateTime64(6, 'UTC')}}", parameters={"lo": start, "hi": end})
        return copy_into(ch, table, columns, postgres, query, {"lo": start, "hi": end, **params})


CAMPAIGN_ASSETS = [seat_usage, credit_usage, campaign_metrics_hourly, vis_scores]
