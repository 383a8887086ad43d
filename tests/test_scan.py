"""Seed 003 periodic scan: patterns and their confidence, proposals capped by the database under concurrent
scans, incidents resolved when their condition clears, and the whole graph against the local stand-ins."""

import threading
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from helpers import sql
from hypothesis import given
from hypothesis import strategies as st

from ops_platform.framework.controls import set_controls
from ops_platform.jobs.scan import periodic_scan
from ops_platform.monitoring.api_usage import record_rate_limit
from ops_platform.monitoring.incidents import Incident, open_incidents
from ops_platform.notifications import NotifierResource, Severity
from ops_platform.scan.incidents import resolve_cleared
from ops_platform.scan.patterns import Pattern, confidence, detect_patterns
from ops_platform.scan.proposals import propose
from ops_platform.sources.chat_logs import ChatLogsSource
from ops_platform.sources.hubspot import HubSpotSource
from ops_platform.sources.n8n import N8nSource
from ops_platform.sources.notion import NotionSource
from ops_platform.sources.standins import NOTION, StandIns, n8n_execution, unauthorized

NOW = datetime.now(UTC)


def failed_runs(postgres, workflow, count, minutes_ago=60):
    sql(postgres, "INSERT INTO n8n_executions (id, workflow_id, status, started_at) "
                  "SELECT :w || '-' || i, :w, 'error', now() - make_interval(mins => :m) FROM generate_series(1, :n) i",
        w=workflow, n=count, m=minutes_ago)


@pytest.mark.parametrize(("hits", "trials", "expected"), [(0, 0, 0.0), (2, 2, 0.5), (3, 3, 0.6), (5, 5, 0.714),
                                                         (8, 8, 0.8), (3, 100, 0.029), (10, 12, 0.714)])
def test_confidence_is_the_hit_rate_against_two_misses(hits, trials, expected):
    assert confidence(hits, trials) == expected


@given(st.integers(0, 10_000), st.integers(0, 10_000))
def test_confidence_stays_within_0_and_1_and_grows_with_hits(hits, extra):
    trials = hits + extra
    value = confidence(hits, trials)
    assert 0 <= value <= 1  # 1 only by rounding (3 places) of thousands of hits
    assert confidence(hits + 1, trials + 1) >= value  # one more hit never lowers it


def test_confidence_refuses_more_hits_than_trials():
    with pytest.raises(ValueError, match="between 0 and trials"):
        confidence(3, 2)


def test_detectors_over_the_last_24_hours(postgres):
    failed_runs(postgres, "wf-two", 2)
    failed_runs(postgres, "wf-three", 3)
    failed_runs(postgres, "wf-five", 5)
    failed_runs(postgres, "wf-old", 9, minutes_ago=25 * 60)  # outside the lookback
    sql(postgres, "INSERT INTO api_calls (source, endpoint, ok, status_code) "
                  "SELECT 'hubspot', '/x', i > 8, 500 FROM generate_series(1, 10) i")  # 8 of 10 failed: 0.667
    with postgres.begin() as conn:
        found = {(p.kind, p.subject): p.confidence for p in detect_patterns(conn, datetime.now(UTC))}
    assert found == {("workflow_failing", "wf-five"): 0.714, ("source_errors", "hubspot"): 0.667,
                     ("workflow_failing", "wf-three"): 0.6}


def pattern(i, conf=0.8):
    return Pattern("workflow_failing", f"wf-{i}", conf, f"wf-{i} failing", "fix it", {"hits": 8})


def test_proposals_only_from_0_7_and_at_most_10_an_hour(postgres):
    with postgres.begin() as conn:
        written = propose(conn, [pattern(i, 0.7 + i / 100) for i in range(15)] + [pattern(99, 0.69)])
    assert len(written) == 10
    kept = sql(postgres, "SELECT subject FROM proposals ORDER BY confidence DESC")
    assert [r.subject for r in kept] == [f"wf-{i}" for i in range(14, 4, -1)]  # the most confident first
    with postgres.begin() as conn:
        assert propose(conn, [pattern(50)]) == []  # the hour is full
    sql(postgres, "UPDATE proposals SET created_at = created_at - interval '61 minutes' WHERE subject IN ('wf-14', 'wf-13')")
    with postgres.begin() as conn:
        assert [s for _, _, s in propose(conn, [pattern(50), pattern(51), pattern(52)])] == ["wf-50", "wf-51"]


def test_a_pattern_already_proposed_is_not_proposed_again_while_pending(postgres):
    with postgres.begin() as conn:
        assert len(propose(conn, [pattern(1)])) == 1
        assert propose(conn, [pattern(1)]) == []
    assert sql(postgres, "SELECT count(*) FROM proposals")[0][0] == 1


def test_concurrent_scans_together_stay_within_10_proposals_an_hour(postgres):
    start = threading.Barrier(4)
    written: list[int] = []

    def scan(offset):
        start.wait(timeout=30)
        for batch in range(3):  # each scan offers 2 patterns three times: 24 offered in all
            with postgres.begin() as conn:
                written.append(len(propose(conn, [pattern(offset + batch * 2), pattern(offset + batch * 2 + 1)])))

    threads = [threading.Thread(target=scan, args=(n * 100,)) for n in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=60)
    assert sum(written) == 10
    assert sql(postgres, "SELECT count(*) FROM proposals")[0][0] == 10


def test_incidents_resolved_when_their_condition_clears(postgres):
    now = datetime.now(UTC)
    sql(postgres, "INSERT INTO data_source_sync (source_name, last_sync_success) VALUES ('notion', true), ('hubspot', false)")
    failed_runs(postgres, "wf-still", 3, minutes_ago=5)
    with postgres.begin() as conn:
        record_rate_limit(conn, "hubspot", 10, 100, now - timedelta(seconds=2), 10)  # 10 %: cleared
        open_incidents(conn, [
            Incident("source_auth", "notion", Severity.WARN, "t", "b"),         # notion synced since: cleared
            Incident("source_unreachable", "hubspot", Severity.WARN, "t", "b"),  # still failing
            Incident("rate_limit", "hubspot", Severity.INFO, "t", "b"),
            Incident("repeated_failures", "n8n workflow wf-still", Severity.WARN, "t", "b"),
            Incident("repeated_failures", "n8n workflow wf-fixed", Severity.WARN, "t", "b"),
            Incident("job_failing", "some_job", Severity.WARN, "t", "b"),       # no check: left for a person
        ], now - timedelta(minutes=1))
    resolved = resolve_cleared(postgres, now)
    assert sorted(k.rsplit(":", 1)[0] for k in resolved) == [
        "rate_limit:hubspot", "repeated_failures:n8n workflow wf-fixed", "source_auth:notion"]
    still = sql(postgres, "SELECT type FROM incidents WHERE status = 'open' ORDER BY type")
    assert [r.type for r in still] == ["job_failing", "repeated_failures", "source_unreachable"]


def scan_resources(postgres, api):
    return {"postgres": postgres, "notifier": NotifierResource(postgres=postgres),
            "notion_source": NotionSource(token=api.token, base_url=api.base_url, backoff_seconds=0.01),
            "n8n_source": N8nSource(api_key=api.token, base_url=api.base_url, backoff_seconds=0.01),
            "hubspot_source": HubSpotSource(),  # not configured: skipped
            "chat_logs_source": ChatLogsSource()}


def test_the_scan_syncs_detects_proposes_and_one_failing_source_blocks_nothing(postgres):
    with StandIns() as api:
        api.executions = [n8n_execution(i, "wf-invoices", "error", NOW - timedelta(minutes=i)) for i in range(1, 7)]
        api.replies[NOTION] = [unauthorized(NOTION)]
        result = periodic_scan.execute_in_process(resources=scan_resources(postgres, api))
    assert result.success
    states = {r.source_name: r.last_sync_success for r in sql(postgres, "SELECT * FROM data_source_sync")}
    assert states == {"notion": False, "n8n": True, "chat_logs": True}
    proposals = sql(postgres, "SELECT pattern_kind, subject, confidence FROM proposals")
    assert [(p.pattern_kind, p.subject, float(p.confidence)) for p in proposals] == [
        ("workflow_failing", "wf-invoices", 0.75)]
    types = sorted(r.type for r in sql(postgres, "SELECT type FROM incidents"))
    assert types == ["repeated_failures", "source_auth"]
    assert result.output_for_node("sync_hubspot")["status"] == "skipped"
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()
                    for e in [e.event_specific_data.materialization]}
    assert materialized == {"n8n_sync", "chat_logs_sync"}


@pytest.mark.parametrize("controls", [{"kill_switch": True}, {"jobs_enabled": False},
                                      {"quiet_hours_start": (NOW - timedelta(hours=1)).time().replace(microsecond=0),
                                       "quiet_hours_end": (NOW + timedelta(hours=1)).time().replace(microsecond=0),
                                       "quiet_hours_tz": "UTC"}])
def test_the_scan_obeys_kill_switch_jobs_and_quiet_hours(postgres, controls):
    with postgres.begin() as conn:
        set_controls(conn, "test", **controls)
    with StandIns() as api:
        result = periodic_scan.execute_in_process(resources=scan_resources(postgres, api), raise_on_error=False)
        assert not result.success
        assert sum(len(v) for v in api.arrivals.values()) == 0  # no source was called
    assert sql(postgres, "SELECT count(*) FROM data_source_sync")[0][0] == 0
    assert sql(postgres, "SELECT count(*) FROM audit_log WHERE action_type = 'refusal'")[0][0] == 4


def test_demo_mode_shows_every_source_working(postgres, monkeypatch):
    from ops_platform.demo.sources import start_demo_sources
    from ops_platform.settings import Settings
    from ops_platform.sources.configured import build_sources

    for var in ("OPS_NOTION_URL", "OPS_NOTION_TOKEN", "OPS_N8N_URL", "OPS_N8N_API_KEY", "OPS_HUBSPOT_URL",
                "OPS_HUBSPOT_TOKEN"):
        monkeypatch.setenv(var, "")  # restored (unset) after the test; blank counts as not configured
    import os
    standins, env = start_demo_sources(postgres, os.environ)
    for var, value in env.items():
        monkeypatch.setenv(var, value)  # as `ops up --demo` exports them
    try:
        assert len(env) == 6
        result = periodic_scan.execute_in_process(resources={
            "postgres": postgres, "notifier": NotifierResource(postgres=postgres), **build_sources(Settings.load())})
    finally:
        standins.stop()
    assert result.success
    synced = {r.source_name: (r.last_sync_success, r.items_synced) for r in sql(postgres, "SELECT * FROM data_source_sync")}
    assert synced == {"notion": (True, 3), "n8n": (True, 6), "hubspot": (True, 5), "chat_logs": (True, 2)}
    assert sql(postgres, "SELECT count(*) FROM incidents WHERE type = 'repeated_failures'")[0][0] == 1


@pytest.mark.parametrize(("controls", "reason"), [
    ({"kill_switch": True}, "the kill switch is on"),
    ({"jobs_enabled": False}, "jobs are disabled"),
    ({"quiet_hours_start": datetime(2026, 1, 1, 0, 0).time(), "quiet_hours_end": datetime(2026, 1, 1, 23, 59).time(),
      "quiet_hours_tz": "UTC"}, "it is quiet hours")])
def test_the_scan_and_sync_schedules_skip_naming_the_control(postgres, instance, controls, reason):
    from ops_platform.schedules.scan import periodic_scan_schedule
    from ops_platform.schedules.sources import sync_hubspot_schedule, sync_n8n_schedule, sync_notion_schedule
    with postgres.begin() as conn:
        set_controls(conn, "test", **controls)
    at = datetime(2026, 5, 4, 12, 30, tzinfo=UTC)
    for schedule in (periodic_scan_schedule, sync_notion_schedule, sync_n8n_schedule, sync_hubspot_schedule):
        with dg.build_schedule_context(instance=instance, resources={"postgres": postgres},
                                       scheduled_execution_time=at) as ctx:
            result = schedule.evaluate_tick(ctx)
        assert result.run_requests == [] and reason in result.skip_message, schedule.name
    with postgres.begin() as conn:
        set_controls(conn, "test", kill_switch=False, jobs_enabled=True, quiet_hours_start=None, quiet_hours_end=None)
    with dg.build_schedule_context(instance=instance, resources={"postgres": postgres}, scheduled_execution_time=at) as ctx:
        [request] = periodic_scan_schedule.evaluate_tick(ctx).run_requests
    assert request.run_key == "periodic_scan:2026-05-04T12:30"
