"""Seed 004 campaign and impact assets: seat and credit usage, hourly metric snapshots, VIS scores."""

import dagster as dg
from pydantic import Field
from sqlalchemy import text

from ops_platform.framework import asset_pages
from ops_platform.framework.asset_pages import asset_page, columns, row_count
from ops_platform.framework.controls import WRITE_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WAREHOUSE_POOL, WarehouseResource
from ops_platform.resources.cluster import run_ddl
from ops_platform.sync.engine import copy_into

HOURLY = dg.HourlyPartitionsDefinition(start_date="2025-01-01-00:00")
DAILY_SCORES = dg.DailyPartitionsDefinition(start_date="2025-01-01")
COMMON = dict(op_tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY)
USAGE_KEY = (("campaign_id", "bigint"), ("snapshot_hour", "timestamp with time zone"))
SEAT_USAGE_COLUMNS = columns(*USAGE_KEY, ("seats_used", "integer"), ("seat_capacity", "integer"),
                             ("seat_utilisation", "numeric(7,2)"))
CREDIT_USAGE_COLUMNS = columns(*USAGE_KEY, ("credits_used", "numeric(14,2)"), ("credit_budget", "numeric(12,2)"),
                               ("credit_utilisation", "numeric(7,2)"))
METRICS_SCHEMA = columns(
    ("snapshot_hour", "DateTime('UTC')"), ("campaign_id", "Int64"), ("status", "LowCardinality(String)"),
    ("seats_used", "Int32"), ("seat_capacity", "Int32"), ("credits_used", "Decimal(14, 2)"),
    ("credit_budget", "Decimal(12, 2)"), ("active_volunteers", "Int32"), ("hours_logged", "Decimal(14, 2)"))
METRICS_COLUMNS = [c.name for c in METRICS_SCHEMA.columns]
VIS_WEIGHTS = {"mentoring": 1.5, "volunteering": 1.0, "event": 0.5}  # any other type weighs 1.0
VIS_SCHEMA = columns(("score_date", "Date"), ("volunteer_id", "Int64"), ("score", "Float64"), ("activities", "Int32"),
                     ("hours_total", "Decimal(14, 2)"), ("half_life_days", "Float64"))
VIS_COLUMNS = [c.name for c in VIS_SCHEMA.columns]

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
  AND (%(campaign_ids)s::bigint[] IS NULL OR c.id = ANY(%(campaign_ids)s::bigint[]))
ORDER BY h, c.id
"""
# Seed 004 VIS: every activity contributes hours × type weight, halved every `half_life_days` of age,
# age measured from the end of the scored day. Only activities before that moment count, so the
# score of a past day can be recomputed exactly.
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
CLEAR_WINDOW_SQL = "DELETE FROM {table} WHERE {within}{only}"
ONLY_CAMPAIGNS = " AND campaign_id IN {campaign_ids:Array(Int64)}"  # one campaign's rows of the window
# Rows per partition of the window, keyed by the partition's start (Unix seconds).
PARTITION_ROWS_SQL = ("SELECT toUnixTimestamp(toDateTime({time_column}, 'UTC')), count() FROM {table} "
                      "WHERE {within} GROUP BY 1")


def _usage(postgres: PostgresResource, statement) -> dict:
    with postgres.begin() as conn:
        values = [r[0] for r in conn.execute(statement)]
    known = [float(v) for v in values if v is not None]
    # dagster/row_count: the hour's rows, one per non-draft campaign
    return row_count(len(values)) | {"campaigns": len(values), "max_utilisation_pct": max(known, default=0.0),
            "at_or_over_100_pct": sum(v >= 100 for v in known)}


@dg.asset(**asset_page("campaigns", "campaign_usage", SEAT_USAGE_COLUMNS, asset_pages.HOURLY),
          kinds={"postgres"}, deps=[["postgres", "campaigns"]], **COMMON, description=(
    "Seat usage per non-draft campaign for the current hour (campaign_usage): seats_used = seats "
    "assigned and not released; seat_utilisation = seats_used / seat_capacity × 100."))
def seat_usage(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    guard_run(context, postgres)
    return dg.MaterializeResult(metadata=_usage(postgres, SEAT_USAGE_SQL))


@dg.asset(**asset_page("campaigns", "campaign_usage", CREDIT_USAGE_COLUMNS, asset_pages.HOURLY),
          kinds={"postgres"}, deps=[["postgres", "campaigns"]], **COMMON, description=(
    "Credit usage per non-draft campaign for the current hour (campaign_usage): credits_used = sum of the "
    "credit ledger (spends positive, refunds negative); credit_utilisation = credits_used / credit_budget "
    "× 100, NULL when the budget is 0 (no limit)."))
def credit_usage(context: dg.AssetExecutionContext, postgres: PostgresResource) -> dg.MaterializeResult:
    guard_run(context, postgres)
    return dg.MaterializeResult(metadata=_usage(postgres, CREDIT_USAGE_SQL))


class MetricsConfig(dg.Config):
    campaign_ids: list[int] | None = Field(default=None, description=(
        "Only these campaigns' rows of the run's hours are replaced (the manual snapshot trigger of one "
        "campaign); the other campaigns' rows stay as they are. None (default): every campaign."))


@dg.asset(key=["warehouse", "campaign_metrics_hourly"],
          **asset_page("campaigns", "campaign_metrics_hourly", METRICS_SCHEMA, asset_pages.HOURLY),
          kinds={"clickhouse", "postgres"}, partitions_def=HOURLY,
          backfill_policy=dg.BackfillPolicy.single_run(), pool=WAREHOUSE_POOL,
          deps=[["postgres", "campaigns"]], **COMMON, description=(
              "Hourly campaign snapshots in ClickHouse (seed 004 aggregate-campaign-metrics), one row per campaign "
              "and hour, as of the end of the hour: seats held, capacity, credits spent to date, budget, distinct "
              "volunteers with activity in the hour, hours logged in the hour, and the status the campaign had then "
              "(from its campaign.status.changed events), so a backfilled hour is reproducible. A run replaces "
              "exactly its hours (or, with `campaign_ids`, only those campaigns' rows of them)."))
def campaign_metrics_hourly(context: dg.AssetExecutionContext, config: MetricsConfig, postgres: PostgresResource,
                            warehouse: WarehouseResource) -> dg.MaterializeResult:
    guard_run(context, postgres)
    ids = config.campaign_ids
    rows = _replace_window(context, warehouse, postgres, "campaign_metrics_hourly", "snapshot_hour", METRICS_COLUMNS,
                           METRICS_SQL, {"campaign_ids": ids}, only=None if ids is None else (ONLY_CAMPAIGNS, ids))
    return dg.MaterializeResult(metadata={"rows": rows, "hours": len(context.partition_keys)}
                                | ({} if ids is None else {"campaign_ids": ", ".join(map(str, ids))}))


class VisConfig(dg.Config):
    half_life_days: float = 90.0


@dg.asset(key=["warehouse", "vis_scores"], **asset_page("campaigns", "vis_scores", VIS_SCHEMA, asset_pages.DAILY),
          kinds={"clickhouse", "postgres"}, partitions_def=DAILY_SCORES,
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
    rows = _replace_window(context, warehouse, postgres, "vis_scores", "score_date", VIS_COLUMNS, VIS_SQL,
                           {"half_life": config.half_life_days})
    return dg.MaterializeResult(metadata={"rows": rows, "half_life_days": config.half_life_days})


def _replace_window(context: dg.AssetExecutionContext, warehouse, postgres, table, time_column, columns, query,
                    params, only: tuple[str, list[int]] | None = None) -> int:
    """Delete the run's partitions' rows in ClickHouse, then stream the recomputed ones in. Each partition
    reports its own `dagster/row_count`, counted in ClickHouse over the window just written (its rows
    only this run writes; the window is a prefix of the table's ORDER BY, so the count reads no more).
    `only` (ONLY_CAMPAIGNS, ids) narrows the delete to those campaigns' rows; `query` must narrow alike."""
    window = context.partition_time_window
    bounds = {"lo": window.start, "hi": window.end}
    within = (f"{time_column} >= {{lo:DateTime64(6, 'UTC')}} AND {time_column} < {{hi:DateTime64(6, 'UTC')}}")
    clause, ids = only or ("", None)
    with warehouse.client() as ch:
        run_ddl(ch, CLEAR_WINDOW_SQL.format(table=table, within=within, only=clause),
                parameters=bounds | ({"campaign_ids": ids} if only else {}))
        rows = copy_into(ch, table, columns, postgres, query, bounds | params)
        counts = dict(ch.query(PARTITION_ROWS_SQL.format(time_column=time_column, table=table, within=within),
                               parameters=bounds).result_rows)
    partitions = context.assets_def.partitions_def
    for key in context.partition_keys:
        start = partitions.time_window_for_partition_key(key).start
        context.add_asset_metadata(row_count(counts.get(int(start.timestamp()), 0)), partition_key=key)
    return rows


CAMPAIGN_ASSETS = [seat_usage, credit_usage, campaign_metrics_hourly, vis_scores]
