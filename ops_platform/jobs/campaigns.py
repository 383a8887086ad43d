"""Seed 004 campaign jobs: the asset jobs of usage, metrics, VIS and the cache warmer; auto-transition (hourly),
the manual status change, and the AI budget reset (daily and monthly budgets)."""

import json
from datetime import UTC, datetime

import dagster as dg
from sqlalchemy import text

from ops_platform.assets.agent_builds import agent_stats_cache, build_stats
from ops_platform.assets.campaigns import campaign_metrics_hourly, credit_usage, seat_usage, vis_scores
from ops_platform.campaigns.lifecycle import Campaign, manual_step, transitions
from ops_platform.framework.controls import WRITE_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.resources.postgres import PostgresResource

seat_usage_job = dg.define_asset_job("seat_usage_job", selection=[seat_usage], description="Seed 004 seat usage.")
credit_usage_job = dg.define_asset_job("credit_usage_job", selection=[credit_usage], description="Seed 004 credit usage.")
campaign_metrics_job = dg.define_asset_job("campaign_metrics_job", selection=[campaign_metrics_hourly],
                                           description="Seed 004 hourly campaign metric snapshots (ClickHouse).")
vis_job = dg.define_asset_job("vis_job", selection=[vis_scores], description="Seed 004 VIS score recalculation.")
cache_warmer_job = dg.define_asset_job("cache_warmer_job", selection=[agent_stats_cache, build_stats, seat_usage, credit_usage],
                                       description="Seed 004 cache warmer: the dashboard caches, fresh before business hours.")

CANDIDATES_SQL = text("""
SELECT c.id, c.status, c.starts_on, c.ends_on, c.seat_capacity, c.credit_budget,
       (SELECT count(*) FROM campaign_seats s WHERE s.campaign_id = c.id AND s.released_at IS NULL) AS seats_used,
       (SELECT coalesce(sum(amount), 0) FROM credit_ledger l WHERE l.campaign_id = c.id) AS credits_used
FROM campaigns c WHERE c.status IN ('scheduled', 'active', 'at_capacity')
FOR UPDATE OF c
""")


@dg.op(tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY)
def auto_transition_campaigns(context: dg.OpExecutionContext, postgres: PostgresResource) -> dg.Output:
    """Move each campaign to the status its dates and usage call for; one event per change."""
    guard_run(context, postgres)
    today = datetime.now(UTC).date()
    changed = {}
    with postgres.begin() as conn:
        for row in conn.execute(CANDIDATES_SQL).all():
            campaign = Campaign(row.status, row.starts_on, row.ends_on, row.seats_used, row.seat_capacity,
                                row.credits_used, row.credit_budget)
            steps = transitions(campaign, today)
            if not steps:
                continue
            conn.execute(text("UPDATE campaigns SET status = :s WHERE id = :id"), {"s": steps[-1][1], "id": row.id})
            for before, after, reason in steps:
                status_changed(conn, row.id, before, after, reason)
                changed[f"{before}->{after}"] = changed.get(f"{before}->{after}", 0) + 1
    context.log.info(f"campaign transitions: {changed or 'none'}")
    return dg.Output(None, metadata={"transitions": sum(changed.values()), **changed})


@dg.job(description="Seed 004: moves campaigns between statuses from dates, capacity and utilisation.")
def auto_transition_job():
    auto_transition_campaigns()


def status_changed(conn, campaign_id: int, before: str, after: str, reason: str) -> None:
    """Every status change, automatic or by hand, is one `campaign.status.changed` event: the
    metric snapshots read a campaign's status in any past hour from these events."""
    conn.execute(
        text("INSERT INTO events_outbox (name, payload) VALUES ('campaign.status.changed', CAST(:p AS jsonb))"),
        {"p": json.dumps({"campaign_id": campaign_id, "from": before, "to": after, "reason": reason})},
    )


class StatusChangeConfig(dg.Config):
    campaign_id: int
    status: str
    requested_by: str


@dg.op(tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY)
def set_campaign_status(context: dg.OpExecutionContext, config: StatusChangeConfig,
                        postgres: PostgresResource) -> dg.Output:
    """A person's status change (schedule a draft, unschedule, close early), with its event."""
    guard_run(context, postgres)
    with postgres.begin() as conn:
        current = conn.execute(text("SELECT status FROM campaigns WHERE id = :id FOR UPDATE"),
                               {"id": config.campaign_id}).scalar_one_or_none()
        if current is None:
            raise dg.Failure(f"campaign {config.campaign_id} does not exist", allow_retries=False)
        if current == config.status:
            return dg.Output(None, metadata={"changed": False, "status": current})
        try:
            reason = manual_step(current, config.status)
        except ValueError as err:
            raise dg.Failure(f"campaign {config.campaign_id}: {err}", allow_retries=False) from None
        conn.execute(text("UPDATE campaigns SET status = :s WHERE id = :id"),
                     {"s": config.status, "id": config.campaign_id})
        status_changed(conn, config.campaign_id, current, config.status, f"{reason} by {config.requested_by}")
    return dg.Output(None, metadata={"changed": True, "from": current, "to": config.status})


@dg.job(description="Seed 004 manual trigger: a person changes a campaign's status (launch from the UI with config).")
def set_campaign_status_job():
    set_campaign_status()


RESET_SQL = text("""
WITH due AS (
    SELECT id, limit_usd, spent_usd, period_start, period FROM ai_budgets
    WHERE (period = 'daily' AND period_start < :today)
       OR (period = 'monthly' AND period_start < date_trunc('month', CAST(:today AS date))::date)
    FOR UPDATE
), history AS (
    INSERT INTO ai_budget_history (budget_id, period_start, limit_usd, spent_usd)
    SELECT id, period_start, limit_usd, spent_usd FROM due ON CONFLICT DO NOTHING
)
UPDATE ai_budgets b
SET spent_usd = 0,
    period_start = CASE WHEN due.period = 'daily' THEN CAST(:today AS date)
                        ELSE date_trunc('month', CAST(:today AS date))::date END
FROM due WHERE b.id = due.id
RETURNING b.period
""")


@dg.op(tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY)
def reset_ai_budgets(context: dg.OpExecutionContext, postgres: PostgresResource) -> dg.Output:
    """Close every budget whose period has ended: keep its spend in history, start the new period at 0.
    Runs daily; a monthly budget rolls over on the first run of a new month, and a missed day catches up."""
    guard_run(context, postgres)
    with postgres.begin() as conn:
        periods = [r.period for r in conn.execute(RESET_SQL, {"today": datetime.now(UTC).date()})]
    return dg.Output(None, metadata={"daily_reset": periods.count("daily"), "monthly_reset": periods.count("monthly")})


@dg.job(description="Seed 004 (q2q-ai budget enforcer): resets daily and monthly AI budgets, history kept.")
def ai_budget_reset_job():
    reset_ai_budgets()
