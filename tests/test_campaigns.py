"""Seed 004: campaign lifecycle, usage, hourly snapshots in ClickHouse, VIS with decay, AI budget reset."""

from datetime import UTC, date, datetime, timedelta
from decimal import Decimal

import dagster as dg
import pytest
from helpers import sql

from ops_platform.assets.campaigns import campaign_metrics_hourly, credit_usage, seat_usage, vis_scores
from ops_platform.campaigns.lifecycle import Campaign, next_status, transitions
from ops_platform.jobs.campaigns import ai_budget_reset_job, auto_transition_job, set_campaign_status_job

TODAY = date(2026, 6, 15)


def campaign(status, starts=-10, ends=10, seats=(0, 10), credits=("0", "100")):
    return Campaign(status, TODAY + timedelta(days=starts), TODAY + timedelta(days=ends), seats[0], seats[1],
                    Decimal(credits[0]), Decimal(credits[1]))


@pytest.mark.parametrize("facts, expected", [
    (campaign("draft", starts=-5), None),                                        # a person moves drafts
    (campaign("scheduled", starts=1), None),                                     # not started yet
    (campaign("scheduled", starts=0), ("active", f"started on {TODAY}")),
    (campaign("active", seats=(10, 10)), ("at_capacity", "all 10 seats taken")),
    (campaign("active", credits=("100", "100")), ("at_capacity", "credit budget 100 spent")),
    (campaign("active", credits=("500", "0")), None),                            # budget 0: no credit limit
    (campaign("at_capacity", seats=(9, 10)), ("active", "capacity available again")),
    (campaign("at_capacity", seats=(10, 10)), None),
    (campaign("active", ends=-1), ("completed", f"ended on {TODAY - timedelta(days=1)}")),
    (campaign("at_capacity", ends=-1, seats=(10, 10)), ("completed", f"ended on {TODAY - timedelta(days=1)}")),
    (campaign("scheduled", starts=-20, ends=-1), ("completed", f"ended on {TODAY - timedelta(days=1)}")),
    (campaign("completed", ends=-30), None),                                     # final
])
def test_each_transition(facts, expected):
    assert next_status(facts, TODAY) == expected


def test_a_campaign_moves_through_several_states_in_one_pass():
    steps = transitions(campaign("scheduled", starts=0, seats=(10, 10)), TODAY)
    assert [(a, b) for a, b, _ in steps] == [("scheduled", "active"), ("active", "at_capacity")]


def seed_campaigns(postgres):
    today = datetime.now(UTC).date()
    sql(postgres, "INSERT INTO volunteers (name) SELECT 'v' || g FROM generate_series(1, 5) g")
    sql(postgres, """INSERT INTO campaigns (name, status, starts_on, ends_on, seat_capacity, credit_budget, created_at) VALUES
        ('starting', 'scheduled', :t, :t + 30, 2, 100, now() - interval '10 days'),
        ('full', 'active', :t - 5, :t + 30, 2, 100, now() - interval '10 days'),
        ('over', 'active', :t - 40, :t - 1, 5, 100, now() - interval '50 days'),
        ('draft', 'draft', :t - 5, :t + 5, 5, 100, now() - interval '10 days')""", t=today)
    sql(postgres, "INSERT INTO campaign_seats (campaign_id, volunteer_id, assigned_at, released_at) VALUES "
                  "(2, 1, now() - interval '2 days', NULL), (2, 2, now() - interval '2 days', NULL), "
                  "(1, 3, now() - interval '2 days', now() - interval '12 hours'), (1, 4, now() - interval '2 days', NULL)")
    sql(postgres, "INSERT INTO credit_ledger (campaign_id, amount) VALUES (1, 30), (1, -5), (2, 10)")


def test_auto_transition_changes_statuses_and_emits_one_event_per_change(postgres, instance):
    seed_campaigns(postgres)
    result = auto_transition_job.execute_in_process(instance=instance, resources={"postgres": postgres})
    assert result.success
    assert dict(sql(postgres, "SELECT name, status FROM campaigns")) == {
        "starting": "active", "full": "at_capacity", "over": "completed", "draft": "draft"}
    events = sql(postgres, "SELECT payload->>'campaign_id', payload->>'from', payload->>'to' FROM events_outbox "
                           "WHERE name = 'campaign.status.changed' ORDER BY id")
    assert sorted(events) == [("1", "scheduled", "active"), ("2", "active", "at_capacity"), ("3", "active", "completed")]
    auto_transition_job.execute_in_process(instance=instance, resources={"postgres": postgres})
    assert sql(postgres, "SELECT count(*) FROM events_outbox")[0][0] == 3  # stable: nothing more to say


def set_status(postgres, instance, campaign_id, status):
    config = {"ops": {"set_campaign_status": {"config": {"campaign_id": campaign_id, "status": status,
                                                         "requested_by": "ana"}}}}
    return set_campaign_status_job.execute_in_process(run_config=config, instance=instance,
                                                      resources={"postgres": postgres}, raise_on_error=False)


def test_a_person_schedules_a_draft_and_the_change_is_an_event(postgres, instance):
    seed_campaigns(postgres)
    assert set_status(postgres, instance, 4, "scheduled").success
    assert sql(postgres, "SELECT status FROM campaigns WHERE id = 4") == [("scheduled",)]
    assert sql(postgres, "SELECT payload->>'from', payload->>'to', payload->>'reason' FROM events_outbox") == [
        ("draft", "scheduled", "scheduled by ana")]
    assert set_status(postgres, instance, 4, "scheduled").success  # already so: no second event
    assert sql(postgres, "SELECT count(*) FROM events_outbox") == [(1,)]


def test_a_move_the_state_machine_leaves_to_dates_is_refused_and_changes_nothing(postgres, instance):
    seed_campaigns(postgres)
    result = set_status(postgres, instance, 4, "active")
    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    assert "a draft campaign cannot be set to 'active' by hand; allowed: scheduled" in str(failure.step_failure_data.error)
    assert "campaign 99 does not exist" in str(next(
        e for e in set_status(postgres, instance, 99, "completed").all_events if e.is_step_failure
    ).step_failure_data.error)
    assert sql(postgres, "SELECT status FROM campaigns WHERE id = 4") == [("draft",)]
    assert sql(postgres, "SELECT count(*) FROM events_outbox") == [(0,)]


def test_seat_and_credit_usage_match_the_ledger(postgres, instance):
    seed_campaigns(postgres)
    dg.materialize([seat_usage, credit_usage], resources={"postgres": postgres}, instance=instance)
    usage = {r[0]: tuple(r[1:]) for r in sql(postgres, """
        SELECT c.name, u.seats_used, u.seat_utilisation, u.credits_used, u.credit_utilisation
        FROM campaign_usage u JOIN campaigns c ON c.id = u.campaign_id""")}
    assert usage == {
        "starting": (1, Decimal("50.00"), Decimal("25.00"), Decimal("25.00")),
        "full": (2, Decimal("100.00"), Decimal("10.00"), Decimal("10.00")),
        "over": (0, Decimal("0.00"), Decimal("0.00"), Decimal("0.00")),
    }  # drafts are not tracked


def test_hourly_snapshots_replace_exactly_their_hours(postgres, warehouse, instance):
    seed_campaigns(postgres)
    hour = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    sql(postgres, "INSERT INTO volunteer_activities (volunteer_id, campaign_id, activity_type, hours, occurred_at) VALUES "
                  "(1, 2, 'event', 2.5, :h + interval '10 minutes'), (2, 2, 'event', 1, :h + interval '20 minutes'), "
                  "(2, 2, 'event', 1, :h + interval '70 minutes')", h=hour)
    resources = {"postgres": postgres, "warehouse": warehouse}
    key = hour.strftime("%Y-%m-%d-%H:%M")
    for _ in range(2):  # a rerun replaces, it does not append
        dg.materialize([campaign_metrics_hourly], partition_key=key, resources=resources, instance=instance)
    with warehouse.client() as ch:
        rows = ch.query("SELECT campaign_id, seats_used, active_volunteers, hours_logged FROM campaign_metrics_hourly "
                        "ORDER BY campaign_id").result_rows
    assert rows == [(1, 1, 0, Decimal("0")), (2, 2, 2, Decimal("3.5")), (3, 0, 0, Decimal("0"))]  # at the hour's end
    end = (hour + timedelta(hours=1)).strftime("%Y-%m-%d-%H:%M")
    start = (hour - timedelta(hours=1)).strftime("%Y-%m-%d-%H:%M")
    result = dg.materialize([campaign_metrics_hourly], resources=resources, instance=instance, tags={
        "dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end})
    hours = result.asset_materializations_for_node("warehouse__campaign_metrics_hourly")
    assert [m.metadata["dagster/row_count"].value for m in hours] == [3, 3, 3]  # each hour its own rows
    with warehouse.client() as ch:
        assert ch.query("SELECT count(), uniqExact(snapshot_hour, campaign_id) FROM campaign_metrics_hourly").result_rows[0] == (9, 9)


def test_one_campaigns_snapshot_rewrites_only_its_row_of_the_hour(postgres, warehouse, instance):
    seed_campaigns(postgres)
    hour = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    sql(postgres, "INSERT INTO volunteer_activities (volunteer_id, campaign_id, activity_type, hours, occurred_at) VALUES "
                  "(1, 1, 'event', 2, :h + interval '10 minutes'), (2, 2, 'event', 1, :h + interval '20 minutes')", h=hour)
    resources = {"postgres": postgres, "warehouse": warehouse}
    key = hour.strftime("%Y-%m-%d-%H:%M")
    dg.materialize([campaign_metrics_hourly], partition_key=key, resources=resources, instance=instance)
    with warehouse.client() as ch:
        ch.command("ALTER TABLE campaign_metrics_hourly UPDATE hours_logged = 99, seats_used = 99 "
                   "WHERE campaign_id IN (1, 2) SETTINGS mutations_sync = 1")
    result = dg.materialize([campaign_metrics_hourly], partition_key=key, resources=resources, instance=instance,
                            run_config={"ops": {"warehouse__campaign_metrics_hourly": {"config": {"campaign_ids": [2]}}}})
    with warehouse.client() as ch:
        rows = ch.query("SELECT campaign_id, seats_used, hours_logged FROM campaign_metrics_hourly "
                        "ORDER BY campaign_id").result_rows
    assert rows == [(1, 99, Decimal("99")), (2, 2, Decimal("1")), (3, 0, Decimal("0"))]  # campaign 1 keeps the damage
    [hour_meta] = result.asset_materializations_for_node("warehouse__campaign_metrics_hourly")
    assert hour_meta.metadata["dagster/row_count"].value == 3  # the hour's rows, not only the rewritten one
    assert hour_meta.metadata["campaign_ids"].value == "2"


def test_vis_decay_matches_a_hand_computed_case_and_a_past_day_is_reproducible(postgres, warehouse, instance):
    sql(postgres, "INSERT INTO volunteers (name) VALUES ('ada')")
    day_end = datetime(2026, 6, 2, tzinfo=UTC)  # the end of 2026-06-01
    sql(postgres, "INSERT INTO volunteer_activities (volunteer_id, activity_type, hours, occurred_at) VALUES "
                  "(1, 'mentoring', 2, :a), (1, 'volunteering', 4, :b), (1, 'event', 8, :later)",
        a=day_end - timedelta(days=90), b=day_end - timedelta(days=180), later=day_end + timedelta(hours=5))
    resources = {"postgres": postgres, "warehouse": warehouse}
    dg.materialize([vis_scores], partition_key="2026-06-01", resources=resources, instance=instance)
    # 2 h × 1.5 × 0.5^(90/90) + 4 h × 1.0 × 0.5^(180/90) = 1.5 + 1.0; the later event does not count yet
    with warehouse.client() as ch:
        score, activities = ch.query("SELECT score, activities FROM vis_scores WHERE score_date = '2026-06-01'").result_rows[0]
    assert score == pytest.approx(2.5, abs=1e-9) and activities == 2

    dg.materialize([vis_scores], partition_key="2026-06-01", resources=resources, instance=instance,
                   run_config={"ops": {"warehouse__vis_scores": {"config": {"half_life_days": 180}}}})
    with warehouse.client() as ch:  # recomputed with another half-life: 2×1.5×0.5^0.5 + 4×0.5
        rows = ch.query("SELECT score FROM vis_scores WHERE score_date = '2026-06-01'").result_rows
    assert len(rows) == 1 and rows[0][0] == pytest.approx(3 * 0.5 ** 0.5 + 2, abs=1e-9)


def test_ai_budgets_reset_once_per_period_with_history(postgres, instance):
    today = datetime.now(UTC).date()
    month_start = today.replace(day=1)
    sql(postgres, """INSERT INTO ai_budgets (scope, period, limit_usd, spent_usd, period_start) VALUES
        ('q2q', 'daily', 50, 12.5, :yesterday), ('q2q', 'monthly', 1000, 310, :month_start),
        ('old', 'monthly', 100, 99, :last_month)""",
        yesterday=today - timedelta(days=1), month_start=month_start,
        last_month=(month_start - timedelta(days=1)).replace(day=1))
    for _ in range(2):
        result = ai_budget_reset_job.execute_in_process(instance=instance, resources={"postgres": postgres})
    assert dict(sql(postgres, "SELECT scope || '/' || period, spent_usd FROM ai_budgets")) == {
        "q2q/daily": Decimal("0.00"), "q2q/monthly": Decimal("310.00"), "old/monthly": Decimal("0.00")}
    assert sorted(r[0] for r in sql(postgres, "SELECT spent_usd FROM ai_budget_history")) == [Decimal("12.50"), Decimal("99.00")]
    assert result.output_for_node("reset_ai_budgets") is None


def test_a_snapshot_shows_the_status_the_campaign_had_in_that_hour(postgres, warehouse, instance):
    seed_campaigns(postgres)
    auto_transition_job.execute_in_process(instance=instance, resources={"postgres": postgres})  # changes happen now
    hour = (datetime.now(UTC) - timedelta(hours=2)).replace(minute=0, second=0, microsecond=0)
    resources = {"postgres": postgres, "warehouse": warehouse}

    def statuses():
        dg.materialize([campaign_metrics_hourly], partition_key=hour.strftime("%Y-%m-%d-%H:%M"),
                       resources=resources, instance=instance)
        with warehouse.client() as ch:
            return dict(ch.query("SELECT campaign_id, status FROM campaign_metrics_hourly").result_rows)

    assert statuses() == {1: "scheduled", 2: "active", 3: "active"}  # two hours ago, before the transitions
    sql(postgres, "UPDATE events_outbox SET created_at = :at", at=hour - timedelta(hours=1))
    assert statuses() == {1: "active", 2: "at_capacity", 3: "completed"}  # had they happened before that hour
