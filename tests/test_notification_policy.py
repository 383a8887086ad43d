"""The policy layer: rate limits per type, grouping, the suppression log, quiet hours across DST,
the release of held messages, and batched notify runs without duplicates."""

from datetime import UTC, datetime, time, timedelta

import dagster as dg
import pytest
from helpers import Receiver, in_one_window, sql

from ops_platform.framework.controls import set_controls
from ops_platform.jobs.notifications import notify_job, notify_requests
from ops_platform.notifications import Notification, NotifierResource, Severity
from ops_platform.notifications.policy import parse_rate_limits
from ops_platform.notifications.transports import ChannelsResource
from ops_platform.build import build_resources
from ops_platform.sensors.notifications import held_notifications_sensor
from ops_platform.settings import ConfigError

SECRET = "policy-secret"
NOON = datetime(2026, 11, 22, 18, 0, tzinfo=UTC)  # 12:00 in Chicago
WEBHOOK_ROUTES = {"SEV0": ["webhook"], "SEV1": ["webhook"], "WARN": ["webhook"], "INFO": ["webhook"]}


def notifier(postgres, receiver, **policy):
    channels = ChannelsResource(webhook_url=receiver.url, webhook_secret=SECRET, webhook_backoff_seconds=0.01)
    return NotifierResource(postgres=postgres, channels=channels, routes=WEBHOOK_ROUTES, **policy)


def alert(key, type_="canvas_alert", severity=Severity.WARN):
    return Notification(type=type_, severity=severity, title=f"alert {key}", body="threshold crossed", dedup_key=key)


def test_one_incident_per_type_per_hour_with_the_reason_logged(postgres):
    with Receiver(SECRET) as receiver:
        n = notifier(postgres, receiver)  # default limits: incident.* 1/1h
        assert n.send(alert("a", "incident.repeated_failures"), at=NOON) == "sent"
        assert n.send(alert("b", "incident.repeated_failures"), at=NOON + timedelta(minutes=59)) == "rate_limited"
        assert n.send(alert("c", "incident.db_latency"), at=NOON + timedelta(minutes=59)) == "sent"  # another type
        assert n.send(alert("d", "incident.repeated_failures"), at=NOON + timedelta(minutes=61)) == "sent"
    assert [r.json["dedup_key"] for r in receiver.requests] == ["a", "c", "d"]
    logged = sql(postgres, "SELECT dedup_key, decision, reason FROM suppression_log")
    assert logged == [("b", "rate_limited", "rate limit 1/1h for 'incident.repeated_failures' reached")]


def test_a_storm_of_one_kind_goes_out_as_one_grouped_message(postgres):
    with Receiver(SECRET) as receiver:
        statuses = notifier(postgres, receiver, group_over=20).send_batch(
            [alert(f"k{i:02}") for i in range(30)] + [alert("other", "build_stalled")], at=NOON)
    assert statuses == ["grouped"] * 30 + ["sent"]
    bodies = sorted((r.json["title"], r.json["body"].count("\n- ") + 1) for r in receiver.requests)
    assert bodies == [("30 × canvas_alert", 30), ("alert other", 1)]
    group_id = sql(postgres, "SELECT id FROM notifications WHERE title = '30 × canvas_alert'")[0][0]
    assert sql(postgres, "SELECT count(*) FROM notifications WHERE status = 'grouped' AND delivered_in = :g",
               g=group_id) == [(30,)]
    assert sql(postgres, "SELECT count(*) FROM suppression_log WHERE decision = 'grouped'") == [(30,)]


def test_grouping_keeps_each_audience_apart(postgres):
    def to(person, i):
        return Notification(type="canvas_alert", severity=Severity.WARN, title=f"{person} {i}", body="",
                            dedup_key=f"{person}:{i}", recipients=(f"{person}@example.com",))

    with Receiver(SECRET) as receiver:
        notifier(postgres, receiver, group_over=20).send_batch(
            [to("ana", i) for i in range(25)] + [to("bo", i) for i in range(25)], at=NOON)
    assert sorted((r.json["title"], tuple(r.json["recipients"])) for r in receiver.requests) == [
        ("25 × canvas_alert", ("ana@example.com",)), ("25 × canvas_alert", ("bo@example.com",))]


def test_at_the_threshold_each_message_goes_out_alone(postgres):
    with Receiver(SECRET) as receiver:
        notifier(postgres, receiver, group_over=20).send_batch([alert(f"k{i}") for i in range(20)], at=NOON)
    assert len(receiver.requests) == 20


def test_duplicates_and_held_messages_are_in_the_suppression_log(postgres):
    with postgres.begin() as conn:
        set_controls(conn, "test", quiet_hours_start=time(22), quiet_hours_end=time(7))
    night = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)  # 23:00 in Chicago
    with Receiver(SECRET) as receiver:
        n = notifier(postgres, receiver)
        assert n.send(alert("x"), at=night) == "held"
        assert n.send(alert("x"), at=night) == "duplicate"
    assert receiver.requests == []
    assert sql(postgres, "SELECT decision, reason FROM suppression_log ORDER BY id") == [
        ("held", "quiet hours"), ("duplicate", "this dedup key was already handled")]


@pytest.mark.parametrize(("at", "expected"), [
    (datetime(2026, 3, 7, 12, 30, tzinfo=UTC), "held"),  # 06:30 CST, the day before DST starts: quiet
    (datetime(2026, 3, 8, 12, 30, tzinfo=UTC), "sent"),  # 07:30 CDT, the same UTC time a day later: awake
    (datetime(2026, 10, 31, 12, 30, tzinfo=UTC), "sent"),  # 07:30 CDT
    (datetime(2026, 11, 1, 12, 30, tzinfo=UTC), "held"),  # 06:30 CST, after DST ended
])
def test_quiet_hours_follow_the_wall_clock_across_dst(postgres, at, expected):
    with postgres.begin() as conn:
        set_controls(conn, "test", quiet_hours_start=time(22), quiet_hours_end=time(7),
                     quiet_hours_tz="America/Chicago")
    with Receiver(SECRET) as receiver:
        assert notifier(postgres, receiver).send(alert("dst"), at=at) == expected
        assert notifier(postgres, receiver).send(alert("page", severity=Severity.SEV0), at=at) == "sent"


def test_held_messages_are_delivered_once_quiet_hours_end(postgres):
    with postgres.begin() as conn:
        set_controls(conn, "test", quiet_hours_start=time(22), quiet_hours_end=time(7))
    night = datetime(2026, 11, 22, 5, 0, tzinfo=UTC)
    with Receiver(SECRET) as receiver:
        n = notifier(postgres, receiver)
        n.send_batch([alert("h1"), alert("h2")], at=night)
        assert n.release_held(at=night) == {}  # still quiet
        assert n.release_held(at=NOON) == {"sent": 2}
        assert n.release_held(at=NOON) == {}
    assert sorted(r.json["dedup_key"] for r in receiver.requests) == ["h1", "h2"]
    assert sql(postgres, "SELECT DISTINCT status FROM notifications") == [("sent",)]


def test_the_held_sensor_asks_for_one_release_run_per_held_set(postgres, instance):
    now = datetime.now(UTC)
    start = (now + timedelta(hours=2)).time().replace(microsecond=0)
    end = (now + timedelta(hours=3)).time().replace(microsecond=0)
    with postgres.begin() as conn:
        set_controls(conn, "test", quiet_hours_start=start, quiet_hours_end=end, quiet_hours_tz="UTC")
    with Receiver(SECRET) as receiver:
        assert notifier(postgres, receiver).send(alert("later"), at=now + timedelta(hours=2, minutes=30)) == "held"
    context = dg.build_sensor_context(instance=instance, resources={"postgres": postgres})
    first, second = in_one_window(lambda: held_notifications_sensor(context), times=2)
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in second.run_requests]
    assert len(first.run_requests) == 1


def test_bad_rate_limits_are_refused_with_the_reason(settings_env):
    with pytest.raises(ConfigError, match="expected 'N/window'"):
        parse_rate_limits({"incident.*": "once an hour"})
    settings_env("OPS_NOTIFY_RATE_LIMITS", '{"health_alert": "0/1h"}')
    with pytest.raises(ConfigError, match="health_alert"):
        build_resources()
    assert parse_rate_limits({"x": "10/30m"})["x"].window == timedelta(minutes=30)


def test_a_storm_is_a_few_runs_each_message_delivered_once(postgres, instance):
    """1 000 alerts (the benchmark does 10 000): batched runs, run_keys from dedup keys, no duplicate, no loss."""
    storm = [alert(f"storm:{i:05}") for i in range(1000)]
    requests, reversed_storm = in_one_window(lambda: notify_requests("canvas_alerts", storm, batch_size=250),
                                             lambda: notify_requests("canvas_alerts", storm[::-1], 250))
    assert len(requests) == 4
    assert [r.run_key for r in requests] == [r.run_key for r in reversed_storm]
    with Receiver(SECRET) as receiver:
        resources = {"notifier": notifier(postgres, receiver, group_over=0)}
        for request in requests + requests[:1]:  # the first batch runs twice, as after a crash and rerun
            result = notify_job.execute_in_process(run_config=request.run_config, instance=instance,
                                                   resources=resources)
            assert result.success
    keys = [r.json["dedup_key"] for r in receiver.requests]
    assert len(keys) == 1000 and set(keys) == {m.dedup_key for m in storm}
    assert all(r.signature_ok for r in receiver.requests)
    assert sql(postgres, "SELECT status, count(*) FROM notifications GROUP BY status") == [("sent", 1000)]
