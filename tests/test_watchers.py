"""Watchers: each threshold just below and at, a broken watcher not stopping the others, one incident
per type, subject and hour, and notification runs that deliver once."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from helpers import in_one_window, sql

from ops_platform.framework.controls import set_controls
from ops_platform.jobs.notifications import notify_job
from ops_platform.monitoring.api_usage import ApiCall, record_api_calls, record_rate_limit
from ops_platform.monitoring.watchers import API_VOLUME, DB_LATENCY, RATE_LIMIT, REPEATED_FAILURES, run_watchers
from ops_platform.notifications import NotifierResource
from ops_platform.sensors.monitoring import evaluate_watchers, watchers_sensor

NOW = datetime(2026, 5, 4, 12, 30, tzinfo=UTC)


def failures(postgres, action, *minutes_ago, at=NOW, success=False):
    sql(postgres, "INSERT INTO audit_log (ts, action, action_type, run_id, success, error) "
                  "SELECT CAST(:at AS timestamptz) - m * interval '1 second', :action, 'run', gen_random_uuid()::text, "
                  ":success, 'boom' FROM unnest(CAST(:seconds AS int[])) AS m",
        at=at, action=action, success=success, seconds=[int(m * 60) for m in minutes_ago])


def api_calls(postgres, source, count, *, start, step_seconds, ok=True, endpoint="/v1"):
    """`count` calls of `source`, the newest at `start`, one every `step_seconds` going back."""
    sql(postgres, "INSERT INTO api_calls (ts, source, endpoint, ok, status_code) "
                  "SELECT CAST(:start AS timestamptz) - i * make_interval(secs => :step), :source, :endpoint, :ok, "
                  "CASE WHEN :ok THEN 200 ELSE 503 END FROM generate_series(0, :count - 1) AS i",
        start=start, step=step_seconds, source=source, endpoint=endpoint, ok=ok, count=count)


def found(postgres, watcher, now=NOW):
    report = run_watchers(postgres, now, [watcher])
    assert report.errors == {}
    return {i.subject: i for i in report.incidents}


def test_repeated_failures_three_in_thirty_minutes(postgres):
    failures(postgres, "job_two", 1, 29)              # 2: below
    failures(postgres, "job_edge", 1, 2, 30)          # the third exactly 30 minutes ago is outside the window
    failures(postgres, "job_three", 1, 10, 29.9)      # 3: at
    failures(postgres, "job_ok", 1, 2, 3, success=True)
    failures(postgres, "job_future", -1, -2, -3)      # after `now`: not seen by a tick at `now`
    with postgres.begin() as conn:  # as an API client records its calls
        record_api_calls(conn, [ApiCall(NOW - timedelta(minutes=m), "hubspot", "/contacts", False, 503)
                                for m in (1, 2, 3)]
                         + [ApiCall(NOW - timedelta(minutes=m), "notion", "/v1", m > 2, 200 if m > 2 else 429)
                            for m in range(1, 8)])

    incidents = found(postgres, REPEATED_FAILURES)
    assert sorted(incidents) == ["hubspot /contacts", "job_three"]
    assert incidents["job_three"].severity == "WARN"
    assert "failed 3 times in the last 30 minutes" in incidents["job_three"].body
    assert "HTTP 503" in incidents["hubspot /contacts"].body


def test_rate_limit_usage_from_80_percent_in_the_current_window(postgres):
    with postgres.begin() as conn:
        record_rate_limit(conn, "below", 79, 100, NOW - timedelta(seconds=10), 60)
        record_rate_limit(conn, "at", 2, 10, NOW - timedelta(seconds=70), 60)  # the previous window...
        record_rate_limit(conn, "at", 8, 10, NOW - timedelta(seconds=10), 60)  # ...replaced by the current one
        record_rate_limit(conn, "full", 100, 100, NOW - timedelta(seconds=9), 10)
        record_rate_limit(conn, "stale", 99, 100, NOW - timedelta(seconds=60), 60)  # its window ended at NOW
    incidents = found(postgres, RATE_LIMIT)
    assert sorted(incidents) == ["at", "full"]
    assert (incidents["at"].severity, incidents["full"].severity) == ("INFO", "WARN")
    assert "used 8 of 10" in incidents["at"].body


def test_api_volume_from_200_percent_of_the_7_day_average_hour(postgres):
    baseline_end = NOW - timedelta(hours=1)
    # 1680 calls in the 7 days before the last hour: 10 in an average hour.
    for source in ("below", "at", "double_at"):
        api_calls(postgres, source, 1680, start=baseline_end, step_seconds=300)
    api_calls(postgres, "below", 19, start=NOW, step_seconds=60)   # 190%
    api_calls(postgres, "at", 20, start=NOW, step_seconds=60)      # 200%
    api_calls(postgres, "double_at", 40, start=NOW, step_seconds=60)  # 400%
    api_calls(postgres, "new_api", 500, start=NOW, step_seconds=5)  # no baseline: nothing to compare with
    api_calls(postgres, "old", 1680, start=NOW - timedelta(days=8), step_seconds=60)  # outside the 7 days
    api_calls(postgres, "old", 50, start=NOW, step_seconds=60)

    incidents = found(postgres, API_VOLUME)
    assert sorted(incidents) == ["at", "double_at"]
    assert (incidents["at"].severity, incidents["double_at"].severity) == ("INFO", "WARN")
    assert "20 calls in the last hour, against 10.00" in incidents["at"].body


def test_db_latency_above_1000_ms_on_average_over_30_minutes(postgres):
    sql(postgres, "INSERT INTO db_latency_samples (ts, latency_ms) SELECT CAST(:at AS timestamptz) - m, ms "
                  "FROM (VALUES (interval '1 minute', 900), (interval '20 minutes', 1100), "
                  "(interval '31 minutes', 90000)) AS s(m, ms)", at=NOW)
    assert found(postgres, DB_LATENCY) == {}  # exactly 1000 ms on average: not above
    sql(postgres, "INSERT INTO db_latency_samples (ts, latency_ms) VALUES (CAST(:at AS timestamptz), 1003)", at=NOW)
    incident = found(postgres, DB_LATENCY)["database"]
    assert incident.severity == "WARN" and "1001.0 ms on average" in incident.body and "3 samples" in incident.body


def test_a_broken_watcher_is_reported_and_the_others_go_on(postgres):
    failures(postgres, "job_three", 1, 2, 3)
    sql(postgres, "INSERT INTO db_latency_samples (ts, latency_ms) VALUES (CAST(:at AS timestamptz), 5000)", at=NOW)
    sql(postgres, "DROP TABLE rate_limit_usage")  # the rate-limit watcher's query now fails

    tick = evaluate_watchers(postgres, NOW)
    assert list(tick.errors) == ["rate_limit"] and "rate_limit_usage" in tick.errors["rate_limit"]
    assert "3/4 watchers ran" in tick.summary and "failed: rate_limit" in tick.summary
    assert sorted(sql(postgres, "SELECT dedup_key, severity FROM incidents")) == [
        ("db_latency:database:2026-05-04T12", "WARN"),
        ("repeated_failures:job_three:2026-05-04T12", "WARN"),
        ("watcher_broken:rate_limit:2026-05-04T12", "WARN")]
    assert sql(postgres, "SELECT action, success FROM audit_log WHERE action_type = 'system'") == [
        ("watchers:rate_limit", False)]
    assert len(tick.run_requests) == 1
    messages = tick.run_requests[0].run_config["ops"]["send_notifications"]["config"]["messages"]
    assert sorted(m["type"] for m in messages) == [
        "incident.db_latency", "incident.repeated_failures", "incident.watcher_broken"]


def test_one_incident_per_type_subject_and_hour_and_one_delivery(postgres, instance):
    failures(postgres, "job_a", 1, 2, 3)
    failures(postgres, "job_b", 1, 2, 3)
    # Deliver WARN at once (to the outbox), so the policy's rate limit of 1 incident.<type> an hour applies.
    notifier = NotifierResource(postgres=postgres, routes={"WARN": ["outbox"]})

    # The run has not happened yet when the sensor looks again 5 minutes later (run keys are wall-clock).
    first, again = in_one_window(lambda: evaluate_watchers(postgres, NOW),
                                 lambda: evaluate_watchers(postgres, NOW + timedelta(minutes=5)))
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in first.run_requests]  # one run
    assert sql(postgres, "SELECT count(*) FROM incidents")[0][0] == 2

    result = notify_job.execute_in_process(run_config=first.run_requests[0].run_config, instance=instance,
                                           resources={"notifier": notifier})
    assert result.success
    assert sql(postgres, "SELECT dedup_key, status FROM notifications ORDER BY dedup_key") == [
        ("incident:repeated_failures:job_a:2026-05-04T12", "sent"),
        ("incident:repeated_failures:job_b:2026-05-04T12", "rate_limited")]
    assert sql(postgres, "SELECT count(*) FROM outbox_messages")[0][0] == 1

    later = evaluate_watchers(postgres, NOW + timedelta(minutes=10))
    assert later.run_requests == [] and "2 incidents hold (0 new this hour)" in later.summary

    # Next hour, still failing: a new incident for the new hour.
    failures(postgres, "job_a", 1, 2, 3, at=NOW + timedelta(minutes=35))
    next_hour = evaluate_watchers(postgres, NOW + timedelta(minutes=35))
    assert "1 new this hour" in next_hour.summary
    assert sql(postgres, "SELECT dedup_key FROM incidents WHERE created_at >= :h", h=NOW.replace(minute=59)) == [
        ("repeated_failures:job_a:2026-05-04T13",)]


def test_sensor_obeys_controls_and_reports_a_quiet_tick(postgres, instance):
    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as ctx:
        quiet = watchers_sensor(ctx)
    assert quiet.run_requests == [] and "4/4 watchers ran; 0 incidents hold" in quiet.skip_reason.skip_message

    failures(postgres, "job_now", 1, 2, 3, at=datetime.now(UTC))
    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as ctx:
        assert len(watchers_sensor(ctx).run_requests) == 1

    with postgres.begin() as conn:
        set_controls(conn, "test", jobs_enabled=False)
    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as ctx:
        skipped = watchers_sensor(ctx)
    assert skipped.run_requests == [] and "jobs are disabled" in skipped.skip_reason.skip_message


@pytest.mark.parametrize("watcher", [REPEATED_FAILURES, RATE_LIMIT, API_VOLUME, DB_LATENCY])
def test_an_empty_database_raises_nothing(postgres, watcher):
    assert found(postgres, watcher) == {}
