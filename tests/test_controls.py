"""Kill switch, jobs/writes switches, quiet hours: schedules and sensors skip, manual runs refuse, all audited."""

from datetime import UTC, datetime, time

import dagster as dg
import pytest
from helpers import sql

from ops_platform.assets.agent_builds import agent_stats_cache
from ops_platform.definitions import defs
from ops_platform.framework.controls import Controls, set_controls
from ops_platform.sensors.agent_builds import stalled_builds_sensor
from ops_platform.sensors.monitoring import health_monitor


def schedule(name):
    return defs.resolve_schedule_def(name)


def flip(postgres, **changes):
    with postgres.begin() as conn:
        set_controls(conn, "test", **changes)


def audit_rows(postgres, action_type):
    return sql(postgres, "SELECT action, error FROM audit_log WHERE action_type = :t ORDER BY id", t=action_type)


def test_kill_switch_skips_schedules_and_sensors_and_refuses_manual_runs(postgres, instance):
    flip(postgres, kill_switch=True)

    with dg.build_schedule_context(instance=instance, resources={"postgres": postgres},
                                   scheduled_execution_time=datetime(2026, 11, 22, 12, 0, tzinfo=UTC)) as ctx:
        tick = schedule("agent_stats_schedule").evaluate_tick(ctx)
    assert tick.run_requests == []
    assert "kill switch is on" in tick.skip_message

    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as ctx:
        result = stalled_builds_sensor(ctx)
    assert result.run_requests == [] and "kill switch is on" in result.skip_reason.skip_message

    outcome = dg.materialize([agent_stats_cache], resources={"postgres": postgres}, instance=instance,
                             raise_on_error=False)
    assert not outcome.success
    failure = outcome.get_step_failure_events()[0].step_failure_data.error
    assert "Refused to run agent_stats_cache: the kill switch is on" in failure.message  # the asset, not __ASSET_JOB
    assert "ops controls kill-switch off" in failure.message
    assert sql(postgres, "SELECT count(*) FROM agent_stats_cache")[0][0] == 0  # nothing was written

    assert [r.action for r in audit_rows(postgres, "skip")] == ["agent_stats_schedule", "stalled_builds_sensor"]
    refusals = audit_rows(postgres, "refusal")
    assert len(refusals) == 1 and refusals[0].error == "the kill switch is on"
    assert refusals[0].action == "agent_stats_cache"
    assert audit_rows(postgres, "control")  # the flip itself is on the record


def test_jobs_disabled_stops_everything_but_the_health_monitor(postgres, instance):
    flip(postgres, jobs_enabled=False)
    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as ctx:
        skipped = stalled_builds_sensor(ctx)
    assert "jobs are disabled" in skipped.skip_reason.skip_message

    sql(postgres, "INSERT INTO dead_letters (source, dedup_key, error, attempts) VALUES ('x', 'x:1', 'boom', 3)")
    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as ctx:
        health = health_monitor(ctx)
    assert len(health.run_requests) == 1, "the health monitor ignores jobs_enabled"
    body = health.run_requests[0].run_config["ops"]["send_notifications"]["config"]["messages"][0]["body"]
    assert "1 new dead letters in the last hour" in body and "jobs_enabled: False" in body


def test_health_alerts_once_for_new_dead_letters_not_forever_for_old_ones(postgres, instance):
    sql(postgres, "INSERT INTO dead_letters (source, dedup_key, error, attempts, created_at) "
                  "VALUES ('x', 'x:1', 'boom', 3, now() - interval '2 hours')")
    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as ctx:
        result = health_monitor(ctx)
    assert result.run_requests == [] and result.skip_reason.skip_message.startswith("healthy")


def test_writes_disabled_refuses_a_writing_asset(postgres, instance):
    flip(postgres, write_enabled=False)
    outcome = dg.materialize([agent_stats_cache], resources={"postgres": postgres}, instance=instance,
                             raise_on_error=False)
    assert "writes are disabled" in outcome.get_step_failure_events()[0].step_failure_data.error.message


def test_quiet_hours_across_midnight_and_dst():
    quiet = Controls(quiet_hours_start=time(22, 0), quiet_hours_end=time(7, 0), quiet_hours_tz="America/Chicago")
    # 2026-03-08: US clocks spring forward at 02:00 local. 06:30 CDT = 11:30 UTC (quiet); 07:30 CDT = 12:30 UTC.
    assert quiet.in_quiet_hours(datetime(2026, 3, 8, 11, 30, tzinfo=UTC))
    assert not quiet.in_quiet_hours(datetime(2026, 3, 8, 12, 30, tzinfo=UTC))
    # The day before (CST, UTC-6), 12:30 UTC is 06:30 local: still quiet.
    assert quiet.in_quiet_hours(datetime(2026, 3, 7, 12, 30, tzinfo=UTC))
    assert quiet.in_quiet_hours(datetime(2026, 3, 8, 4, 0, tzinfo=UTC))  # 22:00 CST on the 7th
    assert not quiet.in_quiet_hours(datetime(2026, 3, 8, 3, 59, tzinfo=UTC))  # 21:59 CST
    daytime = Controls(quiet_hours_start=time(12, 0), quiet_hours_end=time(13, 0), quiet_hours_tz="UTC")
    assert daytime.in_quiet_hours(datetime(2026, 1, 1, 12, 30, tzinfo=UTC))
    assert not daytime.in_quiet_hours(datetime(2026, 1, 1, 13, 0, tzinfo=UTC))
    empty = Controls(quiet_hours_start=time(9, 0), quiet_hours_end=time(9, 0), quiet_hours_tz="UTC")
    assert not empty.in_quiet_hours(datetime(2026, 1, 1, 9, 0, tzinfo=UTC))  # an empty window, not all day


def test_a_bad_time_zone_is_refused_and_nothing_changes(postgres):
    with pytest.raises(ValueError, match="'Mars/Olympus' is not a time zone"):
        flip(postgres, quiet_hours_tz="Mars/Olympus", kill_switch=True)
    assert sql(postgres, "SELECT kill_switch, quiet_hours_tz FROM controls")[0] == (False, "America/Chicago")


@pytest.mark.parametrize("name, at, partition", [
    ("warehouse_sync_schedule", datetime(2026, 11, 22, 9, 15, tzinfo=UTC), "2026-11-22"),   # today, incremental
    ("campaign_metrics_schedule", datetime(2026, 11, 22, 9, 0, tzinfo=UTC), "2026-11-22-08:00"),  # the hour just ended
    ("vis_schedule", datetime(2026, 11, 22, 2, 0, tzinfo=UTC), "2026-11-21"),               # yesterday
])
def test_partitioned_schedules_request_the_right_partition(postgres, instance, name, at, partition):
    with dg.build_schedule_context(instance=instance, resources={"postgres": postgres}, scheduled_execution_time=at,
                                   repository_def=defs.get_repository_def()) as ctx:
        tick = schedule(name).evaluate_tick(ctx)
    assert [r.partition_key for r in tick.run_requests] == [partition]
    if name == "warehouse_sync_schedule":
        assert tick.run_requests[0].run_config["ops"]["warehouse__builds"]["config"]["mode"] == "incremental"
