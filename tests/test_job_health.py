"""The job-health monitor: seed 003's and seed 002's thresholds, each job its own, at and just past each."""

from datetime import UTC, datetime, timedelta

import pytest
from helpers import sql

from ops_platform.monitoring.job_health import check_job_health, parse_overrides, thresholds_for
from ops_platform.settings import ConfigError

NOW = datetime(2026, 5, 4, 12, 0, tzinfo=UTC)


def runs(postgres, job, *, ok=0, failed=0, seconds=1.0, ago=timedelta(minutes=10)):
    sql(postgres, "INSERT INTO audit_log (ts, action, action_type, run_id, success, duration_ms) "
                  "SELECT :at, :job, 'run', gen_random_uuid()::text, i <= :ok, :ms FROM generate_series(1, :n) i",
        at=NOW - ago, job=job, ok=ok, n=ok + failed, ms=int(seconds * 1000))


def found(postgres, overrides=None):
    with postgres.begin() as conn:
        return {(i.type, i.subject) for i in check_job_health(conn, NOW, overrides)}


def test_seed_003_a_run_over_30_seconds(postgres):
    runs(postgres, "periodic_scan", ok=1, seconds=30)
    runs(postgres, "daily_digest", ok=1, seconds=30.5)
    runs(postgres, "morning_call", ok=1, seconds=90, ago=timedelta(hours=2))  # not in the last hour
    assert found(postgres) == {("job_slow", "daily_digest")}


def test_a_per_job_limit(postgres):
    runs(postgres, "daily_digest", ok=1, seconds=45)
    assert found(postgres, {"daily_digest": {"max_duration_seconds": 60}}) == set()


def test_seed_003_failure_rate_over_10_percent(postgres):
    runs(postgres, "at_ten", ok=9, failed=1)
    runs(postgres, "over", ok=8, failed=2)
    runs(postgres, "too_few", failed=4)  # below min_runs
    assert found(postgres) == {("job_failure_rate", "over")}


def test_seed_002_success_rate_below_95_percent_and_twice_the_baseline(postgres):
    runs(postgres, "build_stats_job", ok=19, failed=1)  # 95 %: fine
    runs(postgres, "agent_stats_job", ok=18, failed=2)  # 90 %
    runs(postgres, "inactive_users_job", ok=5, seconds=10, ago=timedelta(days=3))  # baseline 10 s
    runs(postgres, "inactive_users_job", ok=1, seconds=21)  # > 2 ×
    runs(postgres, "activity_cleanup_job", ok=5, seconds=10, ago=timedelta(days=3))
    runs(postgres, "activity_cleanup_job", ok=1, seconds=20)  # exactly 2 ×: fine
    runs(postgres, "health_check_job", ok=1, seconds=300)  # no baseline yet, and no 30 s rule for seed 002
    assert found(postgres) == {("job_failure_rate", "agent_stats_job"), ("job_slow", "inactive_users_job")}


def test_retry_queue_deeper_than_100_and_dead_letters_growing(postgres):
    sql(postgres, "INSERT INTO retry_jobs (job_name) SELECT 'x' FROM generate_series(1, 101)")
    sql(postgres, "INSERT INTO dead_letters (source, dedup_key, error, attempts, created_at) VALUES "
                  "('a', 'old', 'e', 5, :old), ('a', 'new', 'e', 5, :new)", old=NOW - timedelta(hours=3), new=NOW)
    assert found(postgres) == {("retry_queue_depth", "retry_jobs"), ("dead_letters_growing", "dead_letters")}
    sql(postgres, "UPDATE dead_letters SET resolved_at = :now WHERE dedup_key = 'new'", now=NOW)
    sql(postgres, "UPDATE retry_jobs SET status = 'completed' WHERE id = (SELECT min(id) FROM retry_jobs)")
    assert found(postgres) == set()


def test_thresholds_by_seed_and_bad_overrides():
    assert thresholds_for("agent_stats_job").max_failure_rate == 0.05
    assert thresholds_for("periodic_scan").max_duration_seconds == 30
    with pytest.raises(ConfigError, match="periodic_scan.max_seconds is not a threshold"):
        parse_overrides({"periodic_scan": {"max_seconds": 3}})
    with pytest.raises(ConfigError, match="must be a number"):
        parse_overrides({"periodic_scan": {"max_duration_seconds": "fast"}})


def test_the_sensor_opens_incidents_and_asks_for_their_notifications_once(postgres, instance):
    import dagster as dg

    from ops_platform.sensors.monitoring import job_health
    now = datetime.now(UTC)
    sql(postgres, "INSERT INTO audit_log (ts, action, action_type, run_id, success, duration_ms) "
                  "VALUES (:ts, 'periodic_scan', 'run', 'r1', true, 45000)", ts=now - timedelta(minutes=5))

    def tick():
        with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as ctx:
            return job_health(ctx)

    first = tick()
    messages = first.run_requests[0].run_config["ops"]["send_notifications"]["config"]["messages"]
    assert [m["type"] for m in messages] == ["incident.job_slow"]
    assert "took 45.0 s (limit 30 s)" in messages[0]["body"]
    assert [tuple(r) for r in sql(postgres, "SELECT type, severity FROM incidents")] == [("job_slow", "WARN")]
