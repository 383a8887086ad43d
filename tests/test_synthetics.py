"""Synthetic monitoring against real endpoints on 127.0.0.1: results in chDB, an incident per failing check
(once an hour), credentials kept out of storage, and clear errors for bad configuration."""

import json
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from endpoints import Endpoints, closed_port_url
from helpers import sql

from ops_platform.framework.controls import set_controls
from ops_platform.jobs.monitoring import raise_failure_incidents, synthetics_job
from ops_platform.monitoring.probes import ProbeResult
from ops_platform.monitoring.synthetics import CHECKS_VAR, deployed_checks
from ops_platform.notifications import NotifierResource
from ops_platform.schedules.monitoring import build_synthetics_schedule
from ops_platform.settings import ConfigError


def set_checks(settings_env, checks):
    settings_env(CHECKS_VAR, json.dumps(checks))


def run(postgres, warehouse, instance, timeout_seconds=5.0):
    return synthetics_job.execute_in_process(
        run_config={"ops": {"probe_endpoints": {"config": {"timeout_seconds": timeout_seconds}}}}, instance=instance,
        resources={"postgres": postgres, "warehouse": warehouse, "notifier": NotifierResource(postgres=postgres)},
        raise_on_error=False)


def stored(warehouse):
    with warehouse.client() as ch:
        return ch.query("SELECT check_name, url, status_code, ok, error, run_id FROM synthetic_results"
                        " ORDER BY check_name, ts").result_rows


def test_checks_stored_in_clickhouse_and_failures_become_incidents(postgres, warehouse, instance, settings_env):
    with Endpoints(slow_seconds=0.3) as api:
        refused = closed_port_url("/health")
        set_checks(settings_env, [
            {"name": "dashboard", "url": api.url("/ok").replace("127.0.0.1", "probe:s3cret@127.0.0.1") + "?token=abc"},
            {"name": "export", "url": api.url("/error")},
            {"name": "reports", "url": api.url("/slow"), "max_latency_ms": 50},
            {"name": "tenant_login", "url": refused},
            {"name": "boardroom", "url": api.url("/ok"), "expect_status": 204},
        ])
        sql(postgres, "INSERT INTO synthetic_checks (name, url) VALUES ('trust_center', :url), ('export', :other)",
            url=api.url("/ok"), other=api.url("/ok"))  # 'export' is also in the environment: the environment wins
        sql(postgres, "INSERT INTO synthetic_checks (name, url, enabled) VALUES ('retired', :url, false)",
            url=api.url("/error"))
        first = run(postgres, warehouse, instance)
        assert first.success
        incidents = sorted(sql(postgres, "SELECT split_part(dedup_key, ':', 2), severity FROM incidents"))
        notified = sql(postgres, "SELECT count(*) FROM notifications WHERE type = 'incident.synthetic_failed'")[0][0]
        second = run(postgres, warehouse, instance)
    assert second.success
    assert incidents == [("boardroom", "WARN"), ("export", "WARN"), ("reports", "INFO"), ("tenant_login", "WARN")]
    assert notified == 4  # once an hour per check: see the next test for the hour rule with explicit times

    rows = stored(warehouse)
    assert len(rows) == 12 and {r[5] for r in rows} == {first.run_id, second.run_id}
    latest = {r[0]: r[:5] for r in rows}
    port = api.server.server_address[1]
    # Stored without user, password or query string.
    assert latest["dashboard"] == ("dashboard", f"http://127.0.0.1:{port}/ok", 200, True, "")
    assert latest["trust_center"][2:4] == (200, True)
    assert latest["export"][2:5] == (500, False, "expected status 200, got 500")
    assert latest["reports"][2:4] == (200, False) and latest["reports"][4].startswith("slow: answered in")
    assert latest["tenant_login"][2:4] == (None, False) and "ConnectError" in latest["tenant_login"][4]
    assert latest["boardroom"][4] == "expected status 204, got 200"
    assert "retired" not in latest
    assert not any("s3cret" in str(r) or "token" in str(r) for r in rows)

    outputs = {e.step_key: e.step_output_data.metadata for e in second.all_events
               if e.event_type == dg.DagsterEventType.STEP_OUTPUT}
    assert outputs["probe_endpoints"]["failed"].value == 4
    assert outputs["store_synthetic_results"]["rows"].value == 6


def test_incidents_once_per_check_and_hour_and_messages_sent_once(postgres):
    at = datetime(2026, 5, 4, 12, 0, 5, tzinfo=UTC)
    down = ProbeResult("export", "https://app.example.com/export", at, 500, 12.0, False, "expected status 200, got 500")
    slow = ProbeResult("reports", "https://app.example.com/r", at, 200, 4000.0, False, "slow: answered in 4000 ms")
    fine = ProbeResult("login", "https://app.example.com/login", at, 200, 20.0, True, "")
    notifier = NotifierResource(postgres=postgres)

    assert raise_failure_incidents(postgres, notifier, [down, slow, fine], at) == {
        "failing_checks": 2, "new_incidents": 2, "notified": 2}
    assert raise_failure_incidents(postgres, notifier, [down, slow, fine], at + timedelta(minutes=55)) == {
        "failing_checks": 2, "new_incidents": 0, "notified": 0}
    assert raise_failure_incidents(postgres, notifier, [down], at + timedelta(hours=1)) == {
        "failing_checks": 1, "new_incidents": 1, "notified": 1}
    assert sql(postgres, "SELECT dedup_key, severity FROM incidents ORDER BY id") == [
        ("synthetic_failed:export:2026-05-04T12", "WARN"), ("synthetic_failed:reports:2026-05-04T12", "INFO"),
        ("synthetic_failed:export:2026-05-04T13", "WARN")]
    assert sql(postgres, "SELECT dedup_key, status FROM notifications ORDER BY id") == [
        ("incident:synthetic_failed:export:2026-05-04T12", "digest"),
        ("incident:synthetic_failed:reports:2026-05-04T12", "digest"),
        ("incident:synthetic_failed:export:2026-05-04T13", "digest")]


def test_no_answer_within_the_timeout_is_a_failure(postgres, warehouse, instance, settings_env):
    with Endpoints() as api:
        set_checks(settings_env, [{"name": "evidence_explorer", "url": api.url("/hang")}])
        result = run(postgres, warehouse, instance, timeout_seconds=0.2)
    assert result.success
    assert stored(warehouse)[0][2:5] == (None, False, "no answer within 0.2 s")
    assert sql(postgres, "SELECT type FROM incidents") == [("synthetic_failed",)]


@pytest.mark.parametrize("raw, message", [
    ("[{name: 1}]", "OPS_SYNTHETIC_CHECKS is not valid JSON"),
    ('{"name": "a", "url": "https://x"}', "must be a JSON list"),
    ('[{"name": "a"}]', "OPS_SYNTHETIC_CHECKS[0].url: Field required"),
    ('[{"name": "a", "url": "ftp://files.example.com/?token=s3cret"}]', "CHECKS[0].url: String should match"),
    ('[{"name": "a", "url": "https://x", "expect_status": 700}]', "[0].expect_status: Input should be less than"),
    ('[{"name": "a", "url": "https://x", "max_latency_ms": 0}]', "[0].max_latency_ms: Input should be greater than 0"),
    ('[{"name": "a", "url": "https://x", "expected": 200}]', "[0].expected: Extra inputs are not permitted"),
    ('[{"name": "a", "url": "https://x"}, {"name": "a", "url": "https://y"}]', "names a check more than once: a"),
])
def test_bad_check_lists_are_refused_clearly(settings_env, raw, message):
    settings_env(CHECKS_VAR, raw)
    with pytest.raises(ConfigError) as error:
        deployed_checks()
    assert message in str(error.value)
    assert "s3cret" not in str(error.value)
    with pytest.raises(ConfigError):  # the code location does not load with it
        build_synthetics_schedule()


def test_schedule_cron_from_env_validated_at_load(settings_env):
    assert build_synthetics_schedule().cron_schedule == "*/5 * * * *"
    settings_env("SYNTHETICS_SCHEDULE", "*/2 * * * *")
    assert build_synthetics_schedule().cron_schedule == "*/2 * * * *"
    settings_env("SYNTHETICS_SCHEDULE", "every 5 minutes")
    with pytest.raises(ConfigError, match="SYNTHETICS_SCHEDULE='every 5 minutes' is not a valid cron expression"):
        build_synthetics_schedule()


def test_schedule_skips_without_checks_and_under_the_kill_switch(postgres, instance, settings_env):
    schedule = build_synthetics_schedule()
    at = datetime(2026, 5, 4, 12, 5, tzinfo=UTC)

    def tick():
        with dg.build_schedule_context(instance=instance, resources={"postgres": postgres},
                                       scheduled_execution_time=at) as ctx:
            return schedule.evaluate_tick(ctx)

    assert "no synthetic checks configured" in tick().skip_message
    sql(postgres, "INSERT INTO synthetic_checks (name, url) VALUES ('dashboard', 'https://app.example.com/')")
    assert len(tick().run_requests) == 1
    with postgres.begin() as conn:
        set_controls(conn, "test", kill_switch=True)
    assert tick().run_requests == [] and "kill switch is on" in tick().skip_message
