"""Canvas alerts (seed 000): set-wise evaluation checked against Python, cooldown, broken rules, runs once."""

import logging
import operator
import random
import threading
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from helpers import Receiver, sql
from sqlalchemy import text

from ops_platform.canvas_alerts.evaluate import (
    AGGREGATIONS,
    EVALUATE_SQL,
    OPERATORS,
    SEVERITIES,
    evaluate_rules,
    rule_params,
)
from ops_platform.canvas_alerts.metrics import domain_series_sql
from ops_platform.demo.alerts import generate_alerts
from ops_platform.framework.controls import set_controls
from ops_platform.jobs.canvas_alerts import canvas_alerts_job, fire_alerts
from ops_platform.notifications import NotifierResource, Severity
from ops_platform.notifications.transports import ChannelsResource
from ops_platform.sensors.canvas_alerts import alert_tick, canvas_alerts_sensor

SECRET = "alerts-secret-for-tests"
T0 = datetime(2026, 3, 10, 12, 0, tzinfo=UTC)
PY_OPERATORS = {">": operator.gt, ">=": operator.ge, "<": operator.lt, "<=": operator.le, "=": operator.eq,
                "!=": operator.ne}


def notifier(postgres, receiver):
    channels = ChannelsResource(webhook_url=receiver.url, webhook_secret=SECRET, webhook_backoff_seconds=0.05)
    routes = {"SEV0": ["webhook"], "SEV1": ["webhook"], "WARN": ["webhook"], "INFO": ["digest"]}
    return NotifierResource(postgres=postgres, channels=channels, routes=routes)


def add_rule(postgres, metric="points:errors", aggregation="count", window=30, op=">=", threshold=1.0,
             cooldown=10, severity="WARN", workspace=1, name="errors"):
    return sql(postgres, """
        INSERT INTO alert_rules (workspace_id, name, metric, aggregation, window_minutes, operator, threshold,
                                 cooldown_minutes, severity)
        VALUES (:ws, :name, :metric, :agg, :window, :op, :threshold, :cooldown, :severity) RETURNING id""",
               ws=workspace, name=name, metric=metric, agg=aggregation, window=window, op=op, threshold=threshold,
               cooldown=cooldown, severity=severity)[0][0]


def add_point(postgres, at, value=1.0, metric="errors", workspace=1):
    sql(postgres, "INSERT INTO metric_points (metric, workspace_id, ts, value) VALUES (:m, :ws, :ts, :v)",
        m=metric, ws=workspace, ts=at, v=value)


def evaluate(postgres, now):
    with postgres.begin() as conn:
        return evaluate_rules(conn, now)


def run(postgres, request, instance, receiver, **kwargs):
    return canvas_alerts_job.execute_in_process(
        run_config=request.run_config, instance=instance, tags={"dagster/run_key": request.run_key},
        resources={"postgres": postgres, "notifier": notifier(postgres, receiver)}, **kwargs)


def output_metadata(result):
    output = next(e for e in result.all_node_events if e.is_successful_output)
    return {key: value.value for key, value in output.step_output_data.metadata.items()}


def test_an_alert_notifies_when_it_crosses_into_breach_and_once_more_when_it_resolves(postgres, instance):
    """Crossing notifies; staying in breach (past the cooldown) does not; clearing sends "resolved"; crossing
    again notifies again."""
    rule = add_rule(postgres, cooldown=10)
    add_point(postgres, T0 - timedelta(minutes=2), 3)
    with Receiver(SECRET) as receiver:
        first = alert_tick(postgres, T0 + timedelta(seconds=20))
        assert len(first.run_requests) == 1
        result = run(postgres, first.run_requests[0], instance, receiver)
        assert result.success
        assert output_metadata(result) == {"requested": 1, "fired": 1, "not_fired": 0, "sent": 1}
        assert run(postgres, first.run_requests[0], instance, receiver).success  # a retried run sends nothing new

        add_point(postgres, T0 + timedelta(minutes=8), 5)  # still in breach, before and after the cooldown
        for minutes in (9, 11, 25):
            still = alert_tick(postgres, T0 + timedelta(minutes=minutes))
            assert still.run_requests == [] and "0 triggered, 0 resolved" in still.skip_reason.skip_message

        cleared = alert_tick(postgres, T0 + timedelta(minutes=40))  # both points left the 30-minute window
        [request] = cleared.run_requests
        assert output_metadata(run(postgres, request, instance, receiver)) == {
            "requested": 0, "fired": 0, "not_fired": 0, "resolved": 1}
        assert alert_tick(postgres, T0 + timedelta(minutes=41)).run_requests == []  # resolved once

        add_point(postgres, T0 + timedelta(minutes=45), 7)
        again = alert_tick(postgres, T0 + timedelta(minutes=46))
        assert run(postgres, again.run_requests[0], instance, receiver).success

    assert [r.signature_ok for r in receiver.requests] == [True, True, True]
    assert [r.json["dedup_key"] for r in receiver.requests] == [
        f"canvas_alert:{rule}:2026-03-10T12:00:00Z", f"canvas_alert_resolved:{rule}:2026-03-10T12:40:00Z",
        f"canvas_alert:{rule}:2026-03-10T12:46:00Z"]
    assert receiver.requests[1].json["title"] == "Resolved: errors" and receiver.requests[1].json["meta"]["value"] == 0
    assert sql(postgres, "SELECT last_triggered_at, last_resolved_at, breached FROM alert_rules") == [
        (T0 + timedelta(minutes=46), T0 + timedelta(minutes=40), True)]


def test_every_aggregation_and_operator_matches_python_on_the_same_points(postgres):
    rng = random.Random(4)
    now = T0
    series = [("a", 1), ("a", 2), ("b", 1), ("b", 3)]
    points = []
    for metric, workspace in series:  # whole minutes from 5 in the future to 3 hours ago: boundaries included
        for minutes in rng.sample(range(-5, 180), 70):
            points.append((metric, workspace, now - timedelta(minutes=minutes), float(rng.randint(-10, 20))))
    with postgres.begin() as conn:
        conn.connection.driver_connection.cursor().executemany(
            "INSERT INTO metric_points (metric, workspace_id, ts, value) VALUES (%s, %s, %s, %s)", points)

    def expected(metric, workspace, window, aggregation):
        values = [(ts, v) for m, w, ts, v in points if (m, w) == (metric, workspace)
                  and now - timedelta(minutes=window) < ts <= now]
        if aggregation == "count":
            return float(len(values))
        if aggregation == "sum":
            return sum(v for _, v in values)
        if not values:
            return None
        numbers = [v for _, v in values]
        return {"avg": sum(numbers) / len(numbers), "min": min(numbers), "max": max(numbers),
                "last": max(values)[1]}[aggregation]

    rules = {}
    for i, ((metric, workspace), aggregation, op) in enumerate(
            (s, a, o) for s in [*series, ("none", 1)] for a in AGGREGATIONS for o in OPERATORS):
        window = (5, 30, 120)[i % 3]
        value = expected(metric, workspace, window, aggregation)
        threshold = (value if value is not None else 0) + rng.choice([-1, 0, 1])  # below, at, above: edges included
        rule_id = add_rule(postgres, f"points:{metric}", aggregation, window, op, threshold, workspace=workspace)
        fires = value is not None and PY_OPERATORS[op](value, threshold)
        rules[rule_id] = (value, fires)

    evaluation = evaluate(postgres, now)
    assert evaluation.broken == {} and evaluation.evaluated == len(rules) == 180
    assert {t.rule_id for t in evaluation.triggered} == {i for i, (_, fires) in rules.items() if fires}
    assert 40 < len(evaluation.triggered) < 140  # both outcomes are well represented
    recorded = dict(sql(postgres, "SELECT id, last_value FROM alert_rules"))
    for rule_id, (value, _) in rules.items():
        assert recorded[rule_id] == (pytest.approx(value) if value is not None else None)


def test_sums_and_averages_are_exact_decimals(postgres):
    for minute in range(10):
        add_point(postgres, T0 - timedelta(minutes=minute), 0.1)
    below = add_rule(postgres, aggregation="avg", op="<", threshold=0.1)
    at_least = add_rule(postgres, aggregation="avg", op=">=", threshold=0.1)
    total = add_rule(postgres, aggregation="sum", op="=", threshold=1)
    assert sum([0.1] * 10) < 1  # what float arithmetic would say: the opposite of every rule below
    assert [t.rule_id for t in evaluate(postgres, T0).triggered] == [at_least, total]
    assert sql(postgres, "SELECT last_value FROM alert_rules WHERE id = :id", id=below) == [(0.1,)]


def test_a_nan_point_is_shown_but_fires_nothing(postgres):
    add_point(postgres, T0 - timedelta(minutes=1), float("nan"))
    add_rule(postgres, aggregation="max", op=">", threshold=1)
    assert evaluate(postgres, T0).triggered == []
    assert sql(postgres, "SELECT last_value::text FROM alert_rules") == [("NaN",)]


def test_rule_severities_are_the_notification_severities():
    assert SEVERITIES == tuple(str(s) for s in Severity)


def test_each_series_is_read_once_whatever_the_number_of_rules(postgres):
    """200 rules on 20 (metric, workspace, window) series: 20 index ranges, not one per rule or worse."""
    sql(postgres, """INSERT INTO alert_rules (workspace_id, name, metric, aggregation, window_minutes, operator,
                     threshold) SELECT i % 10, 'r' || i, 'points:errors', 'count', 15 * (1 + (i / 10) % 2), '>', 0
                     FROM generate_series(1, 200) i""")
    add_point(postgres, T0 - timedelta(minutes=1))
    params = rule_params() | {"now": T0, "since": T0}
    with postgres.begin() as conn:
        plan = conn.execute(text("EXPLAIN (ANALYZE, FORMAT JSON) " + EVALUATE_SQL.format(domain=domain_series_sql([]))),
                            params).scalar_one()

    def scans(node):
        yield from ([node] if node.get("Relation Name") == "metric_points" else [])
        for child in node.get("Plans", []):
            yield from scans(child)

    assert [n["Actual Loops"] for n in scans(plan[0]["Plan"])] == [20]


def test_domain_metrics_read_the_platform_tables(postgres):
    now = T0
    sql(postgres, """INSERT INTO builds (prd_name, status, started_at, completed_at) VALUES
        ('in-window', 'failed', :now - interval '50 minutes', :now - interval '20 minutes'),
        ('also', 'failed', :now - interval '50 minutes', :now - interval '59 minutes'),
        ('too-old', 'failed', :now - interval '3 hours', :now - interval '61 minutes'),
        ('fine', 'completed', :now - interval '50 minutes', :now - interval '10 minutes')""", now=now)
    sql(postgres, """INSERT INTO dead_letters (source, dedup_key, error, attempts, created_at, resolved_at) VALUES
        ('x', 'open', 'e', 3, :now - interval '2 days', NULL),
        ('x', 'resolved-later', 'e', 3, :now - interval '2 days', :now + interval '1 hour'),
        ('x', 'resolved', 'e', 3, :now - interval '2 days', :now - interval '1 hour'),
        ('x', 'future', 'e', 3, :now + interval '1 hour', NULL)""", now=now)
    failed = add_rule(postgres, "builds.failed", "count", 60, ">=", 2, workspace=0)
    letters = add_rule(postgres, "dead_letters.open", "last", 5, ">", 1, workspace=0)
    quiet = add_rule(postgres, "notifications.failed", "count", 60, ">", 0, workspace=0)
    evaluation = evaluate(postgres, now)
    assert [t.rule_id for t in evaluation.triggered] == [failed, letters]
    assert sql(postgres, "SELECT id, last_value FROM alert_rules ORDER BY id") == [
        (failed, 2.0), (letters, 2.0), (quiet, 0.0)]


def test_broken_rules_are_marked_with_their_error_and_the_others_go_on(postgres):
    good = add_rule(postgres, name="good")
    broken = {
        add_rule(postgres, metric="revenue"): "unknown metric 'revenue': expected points:<name> (metric_points) or "
        "one of builds.duration_seconds, builds.failed, dead_letters.open, notifications.failed",
        add_rule(postgres, metric="points:"): "unknown metric 'points:'",
        add_rule(postgres, aggregation="median"): "unknown aggregation 'median': expected one of avg, sum, min, max, "
        "count, last",
        add_rule(postgres, op="=>"): "unknown operator '=>': expected one of > >= < <= = !=",
        add_rule(postgres, window=0): "window_minutes must be positive, got 0",
        add_rule(postgres, cooldown=-5): "cooldown_minutes must be 0 or more, got -5",
        add_rule(postgres, threshold=float("nan")): "threshold must be a finite number, got NaN",
        add_rule(postgres, severity="HIGH"): "unknown severity 'HIGH': expected one of SEV0, SEV1, WARN, INFO",
        add_rule(postgres, metric="builds.failed", workspace=7): "metric 'builds.failed' is platform-wide "
        "(workspace 0), but the rule is for workspace 7",
    }
    add_point(postgres, T0 - timedelta(minutes=1))
    evaluation = evaluate(postgres, T0)
    assert [t.rule_id for t in evaluation.triggered] == [good]
    assert evaluation.evaluated == 1 and set(evaluation.broken) == set(broken)
    recorded = dict(sql(postgres, "SELECT id, last_error FROM alert_rules WHERE id <> :good", good=good))
    for rule_id, message in broken.items():
        assert recorded[rule_id].startswith(message), recorded[rule_id]
    assert sql(postgres, "SELECT last_error, last_value FROM alert_rules WHERE id = :good", good=good) == [(None, 1.0)]

    fixed = next(i for i, m in broken.items() if "median" in m)
    sql(postgres, "UPDATE alert_rules SET aggregation = 'max' WHERE id = :id", id=fixed)
    again = evaluate(postgres, T0)
    assert fixed not in again.broken and {t.rule_id for t in again.triggered} == {good, fixed}
    assert sql(postgres, "SELECT last_error FROM alert_rules WHERE id = :id", id=fixed) == [(None,)]


def test_a_broken_rule_warns_once_then_only_counts_until_it_changes(postgres, caplog):
    add_rule(postgres, name="good")
    broken = add_rule(postgres, aggregation="median")
    log = logging.getLogger("canvas_alerts_test")

    def warnings_of_a_tick(minute: int) -> list[str]:
        caplog.clear()
        with caplog.at_level(logging.WARNING, logger=log.name):
            result = alert_tick(postgres, T0 + timedelta(minutes=minute), log)
        assert "1 broken" in result.skip_reason.skip_message  # the tick's summary always counts it
        return [r.getMessage() for r in caplog.records]

    first = warnings_of_a_tick(0)
    assert len(first) == 1 and f"rule {broken}: unknown aggregation 'median'" in first[0]
    assert warnings_of_a_tick(1) == warnings_of_a_tick(2) == []  # still broken, still skipped, quiet
    sql(postgres, "UPDATE alert_rules SET aggregation = 'mode' WHERE id = :id", id=broken)
    assert "unknown aggregation 'mode'" in warnings_of_a_tick(3)[0]  # a new error is news


def test_two_evaluations_of_one_trigger_ask_for_the_same_runs_in_few_batches(postgres):
    sql(postgres, """INSERT INTO alert_rules (workspace_id, name, metric, aggregation, window_minutes, operator,
                     threshold) SELECT 1, 'r' || i, 'points:errors', 'count', 30, '>', 0 FROM generate_series(1, 1200) i""")
    add_point(postgres, T0 - timedelta(minutes=1))
    first = alert_tick(postgres, T0 + timedelta(seconds=5))
    second = alert_tick(postgres, T0 + timedelta(seconds=55))
    assert [len(r.run_config["ops"]["fire_canvas_alerts"]["config"]["triggers"]) for r in first.run_requests] == [
        500, 500, 200]
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in second.run_requests]
    assert len({r.run_key for r in first.run_requests}) == 3


def test_two_concurrent_runs_fire_a_rule_once(postgres):
    rule = add_rule(postgres, cooldown=10)
    barrier = threading.Barrier(4)
    results = []
    with Receiver(SECRET) as receiver:
        sender = notifier(postgres, receiver)

        def fire(at):
            barrier.wait()
            results.append(fire_alerts(postgres, sender, at, {rule: 3.0}))

        # two ticks a minute apart, and a retry of each: one trigger time wins, the other is in cooldown
        threads = [threading.Thread(target=fire, args=(T0 + timedelta(minutes=m),)) for m in (0, 0, 1, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(receiver.requests) == 1
    fired_at = sql(postgres, "SELECT last_triggered_at FROM alert_rules")[0][0]
    assert receiver.requests[0].json["dedup_key"] == f"canvas_alert:{rule}:{fired_at:%Y-%m-%dT%H:%M:%SZ}"
    statuses = sorted(s for _, found in results for s in found)
    assert statuses == ["duplicate", "sent"]  # the retry of the winner re-claimed it; the dedup key held
    assert sql(postgres, "SELECT count(*) FROM notifications")[0][0] == 1


@pytest.mark.parametrize("control", [{"kill_switch": True}, {"comms_enabled": False}])
def test_kill_switch_or_comms_off_skips_the_tick_and_refuses_the_run(postgres, instance, control):
    add_rule(postgres)
    add_point(postgres, T0 - timedelta(minutes=1))
    request = alert_tick(postgres, T0).run_requests[0]
    with postgres.begin() as conn:
        set_controls(conn, "test", **control)
    skipped = alert_tick(postgres, T0 + timedelta(minutes=1))
    assert skipped.run_requests == []
    assert skipped.skip_reason.skip_message.startswith("canvas_alerts_sensor skipped: ")
    with Receiver(SECRET) as receiver:
        result = run(postgres, request, instance, receiver, raise_on_error=False)
    assert not result.success and receiver.requests == []
    assert sql(postgres, "SELECT last_triggered_at FROM alert_rules") == [(None,)]


def test_the_sensor_itself_evaluates_now(postgres, instance):
    now = datetime.now(UTC)
    rule = add_rule(postgres, window=60)
    add_point(postgres, now - timedelta(minutes=5))
    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as context:
        result = canvas_alerts_sensor(context)
    assert len(result.run_requests) == 1
    triggers = result.run_requests[0].run_config["ops"]["fire_canvas_alerts"]["config"]["triggers"]
    assert triggers == [{"rule_id": rule, "value": 1.0}]


def test_demo_rules_and_points_trigger_some_alerts_and_show_one_broken_rule(postgres):
    with postgres.raw() as conn:
        counts = generate_alerts(conn, rules=200, points=20_000, now=T0)
    assert counts == {"alert_rules": 200, "metric_points": 20_000}
    assert sql(postgres, "SELECT count(*) FROM metric_points")[0][0] == 20_000
    evaluation = evaluate(postgres, T0)
    assert len(evaluation.broken) == 1 and 5 <= len(evaluation.triggered) < 150
    with postgres.raw() as conn:
        generate_alerts(conn, rules=200, points=20_000, now=T0)
    assert [t.rule_id for t in evaluate(postgres, T0).triggered] == [t.rule_id for t in evaluation.triggered]
