"""Seed 003 data sources against real HTTP servers on 127.0.0.1 speaking Notion's, n8n's and HubSpot's shapes."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from helpers import sql

from ops_platform.assets.sources import notion_sync
from ops_platform.notifications import NotifierResource
from ops_platform.sources.chat_logs import ChatLogsSource
from ops_platform.sources.hubspot import HubSpotSource
from ops_platform.sources.n8n import N8nSource
from ops_platform.sources.notion import NotionSource
from ops_platform.sources.standins import (
    HUBSPOT,
    N8N,
    NOTION,
    StandIns,
    hubspot_contact,
    n8n_execution,
    notion_page,
    rate_limited,
)
from ops_platform.sources.sync import run_sync

NOW = datetime.now(UTC).replace(microsecond=0)
FAST = {"backoff_seconds": 0.01}


@pytest.fixture
def api():
    with StandIns() as server:
        yield server


def notion(api, **kw):
    return NotionSource(**{"token": api.token, "base_url": api.base_url} | FAST | kw)


def memory(postgres, prefix):
    return sql(postgres, "SELECT key, version, authority, source_type, superseded_at IS NULL AS current, value "
                         "FROM memory_items WHERE key LIKE :p ORDER BY key, version", p=f"{prefix}%")


def test_notion_pages_tagged_canonical_paginated_and_superseded_when_changed(api, postgres):
    api.pages = [notion_page(f"p{i}", f"Page {i}", ["SOP"] if i % 3 == 0 else ["Draft"], NOW - timedelta(hours=1))
                 for i in range(150)]
    result = run_sync(notion(api), postgres, None)
    assert (result.status, result.items) == ("ok", 50)
    assert len(api.requests[NOTION]) == 2  # 100 + 50, following next_cursor
    assert api.requests[NOTION][1]["body"]["start_cursor"] == "100"
    assert api.requests[NOTION][0]["headers"]["Notion-Version"]
    rows = memory(postgres, "notion.page.")
    assert len(rows) == 50 and {(r.authority, r.source_type, r.current) for r in rows} == {("canonical", "notion", True)}

    api.pages[0] = notion_page("p0", "Page 0, edited", ["SOP"], NOW)  # changed
    assert run_sync(notion(api), postgres, None).status == "ok"
    history = memory(postgres, "notion.page.p0")
    assert [(r.version, r.current) for r in history] == [(1, False), (2, True)]
    assert history[1].value["title"] == "Page 0, edited"
    assert len(memory(postgres, "notion.page.")) == 51  # the other 49 unchanged: nothing written
    reason, = sql(postgres, "SELECT supersede_reason FROM memory_items WHERE key = 'notion.page.p0' AND version = 1")[0]
    assert reason == "canonical_update"
    with pytest.raises(Exception, match="never deleted"):
        sql(postgres, "DELETE FROM memory_items")


def test_every_call_lands_in_api_calls_and_rate_limit_usage(api, postgres):
    api.pages = [notion_page("p1", "Page", ["Final"], NOW)]
    api.replies[NOTION] = [rate_limited(NOTION, retry_after=1)]
    assert run_sync(notion(api), postgres, None).status == "ok"
    calls = sql(postgres, "SELECT source, endpoint, ok, status_code FROM api_calls ORDER BY id")
    assert [tuple(c) for c in calls] == [("notion", "/v1/search", False, 429), ("notion", "/v1/search", True, 200)]
    gap = api.arrivals[NOTION][1] - api.arrivals[NOTION][0]
    assert gap >= 0.95, f"Retry-After: 1 obeyed, got {gap:.2f} s"
    usage = sql(postgres, "SELECT bucket, used, limit_value, window_seconds FROM rate_limit_usage")
    assert [tuple(u) for u in usage] == [("notion", 1, 3, 1)]  # the 429 left the 1-s window a second ago


@pytest.mark.parametrize("provider", [NOTION, N8N, HUBSPOT])
def test_a_refused_credential_is_not_retried_and_alerts_at_once(api, postgres, provider):
    source = {NOTION: notion(api, token="wrong"),
              N8N: N8nSource(api_key="wrong", base_url=api.base_url, **FAST),
              HUBSPOT: HubSpotSource(token="wrong", base_url=api.base_url, **FAST)}[provider]
    notifier = NotifierResource(postgres=postgres)
    result = run_sync(source, postgres, notifier)
    assert (result.status, result.category) == ("failed", "auth")
    assert len(api.requests[provider]) == 1
    assert "HTTP 401" in result.detail and "wrong" not in result.detail
    state = sql(postgres, "SELECT last_sync_success, consecutive_failures, last_error FROM data_source_sync")[0]
    assert (state.last_sync_success, state.consecutive_failures) == (False, 1) and "401" in state.last_error
    incident = sql(postgres, "SELECT type, severity FROM incidents")
    assert [tuple(i) for i in incident] == [("source_auth", "WARN")]
    assert sql(postgres, "SELECT count(*) FROM notifications WHERE type = 'incident.source_auth'")[0][0] == 1


def test_unreachable_alerts_on_the_third_run_in_a_row(postgres):
    from helpers import free_port
    source = HubSpotSource(token="t", base_url=f"http://127.0.0.1:{free_port()}", retry_attempts=2, **FAST)
    for run in (1, 2):
        assert run_sync(source, postgres, None).category == "transient"
        assert sql(postgres, "SELECT count(*) FROM incidents")[0][0] == 0, f"no alert after run {run}"
    run_sync(source, postgres, None)
    assert [tuple(r) for r in sql(postgres, "SELECT type, title FROM incidents")] == [
        ("source_unreachable", "hubspot unreachable for 3 runs in a row")]
    assert sql(postgres, "SELECT count(*) FROM api_calls WHERE NOT ok AND status_code IS NULL")[0][0] == 6


def test_n8n_failed_executions_since_the_last_sync_and_repeated_failures(api, postgres):
    api.executions = [n8n_execution(i, "wf-a" if i % 2 else "wf-b", "error" if i < 230 else "success",
                                    NOW - timedelta(minutes=300 - i)) for i in range(1, 240)]
    source = N8nSource(api_key=api.token, base_url=api.base_url, **FAST)
    result = run_sync(source, postgres, None)
    assert (result.status, result.items) == ("ok", 229)
    assert {r["query"]["status"] for r in api.requests[N8N]} == {"error"}
    assert [r["query"].get("cursor") for r in api.requests[N8N]] == [None, "100", "200"]
    incidents = sql(postgres, "SELECT type, severity, title FROM incidents ORDER BY title")
    assert [tuple(i) for i in incidents] == [("repeated_failures", "WARN", "Workflow wf-a failed 115 times"),
                                             ("repeated_failures", "WARN", "Workflow wf-b failed 114 times")]
    api.executions += [n8n_execution(300, "wf-c", "error", NOW), n8n_execution(301, "wf-c", "error", NOW)]
    api.requests[N8N].clear()
    assert run_sync(source, postgres, None).items == 2  # only those after the watermark
    assert len(api.requests[N8N]) == 1
    assert sql(postgres, "SELECT count(*) FROM n8n_executions")[0][0] == 231


def test_hubspot_contacts_modified_since_the_watermark(api, postgres):
    api.contacts = [hubspot_contact(i, f"c{i}@example.com", NOW - timedelta(minutes=i)) for i in range(1, 131)]
    source = HubSpotSource(token=api.token, base_url=api.base_url, **FAST)
    assert run_sync(source, postgres, None).items == 130
    assert [r["body"].get("after") for r in api.requests[HUBSPOT]] == [None, "100"]
    first = api.requests[HUBSPOT][0]["body"]["filterGroups"][0]["filters"][0]
    assert (first["propertyName"], first["operator"], first["value"]) == ("lastmodifieddate", "GTE", "0")
    rows = memory(postgres, "hubspot.contact.")
    assert len(rows) == 130 and {(r.authority, r.source_type) for r in rows} == {("inferred", "hubspot")}
    assert rows[0].value["properties"]["email"]

    api.contacts.append(hubspot_contact(999, "new@example.com", NOW + timedelta(seconds=5)))
    api.requests[HUBSPOT].clear()
    assert run_sync(source, postgres, None).items == 2  # GTE the watermark: the newest again, and the new one
    since = int(api.requests[HUBSPOT][0]["body"]["filterGroups"][0]["filters"][0]["value"])
    assert since == int((NOW - timedelta(minutes=1)).timestamp() * 1000)
    assert len(memory(postgres, "hubspot.contact.")) == 131


def test_chat_logs_conversations_with_new_messages(postgres):
    sql(postgres, "INSERT INTO chat_logs (conversation_id, role, content, ts) VALUES "
                  "('c1', 'user', 'hi', now() - interval '2 minutes'), ('c1', 'assistant', 'hello', now() - interval '1 minute'),"
                  "('c2', 'user', 'status?', now() - interval '1 minute')")
    assert run_sync(ChatLogsSource(), postgres, None).items == 2
    sql(postgres, "INSERT INTO chat_logs (conversation_id, role, content) VALUES ('c1', 'user', 'thanks')")
    assert run_sync(ChatLogsSource(), postgres, None).items == 1
    c1 = memory(postgres, "chat.conversation.c1")
    assert [(r.version, r.current, len(r.value["messages"])) for r in c1] == [(1, False, 2), (2, True, 3)]


def test_an_unconfigured_source_skips_with_the_reason(postgres):
    result = run_sync(N8nSource(), postgres, None)
    assert (result.status, result.detail) == ("skipped", "n8n is not configured: set OPS_N8N_URL, OPS_N8N_API_KEY")
    assert [tuple(r) for r in sql(postgres, "SELECT action, action_type, error FROM audit_log")] == [
        ("sync_n8n", "skip", result.detail)]

    outcome = dg.materialize([notion_sync], resources={
        "notion_source": NotionSource(), "postgres": postgres, "notifier": NotifierResource(postgres=postgres)})
    assert outcome.success
    assert outcome.asset_materializations_for_node(notion_sync.op.name) == []


def test_the_asset_materializes_what_it_synced_and_fails_without_retry_on_auth(api, postgres):
    api.pages = [notion_page("p1", "Page", ["Canonical"], NOW)]
    resources = {"notion_source": notion(api), "postgres": postgres, "notifier": NotifierResource(postgres=postgres)}
    outcome = dg.materialize([notion_sync], resources=resources)
    [materialization] = outcome.asset_materializations_for_node(notion_sync.op.name)
    assert materialization.metadata["items_synced"].value == 1
    resources["notion_source"] = notion(api, token="bad")
    failed = dg.materialize([notion_sync], resources=resources, raise_on_error=False)
    assert not failed.success
    assert len([e for e in failed.all_events if e.event_type == dg.DagsterEventType.STEP_RESTARTED]) == 0


def test_health_checks_each_configured_api_without_the_database(api):
    from helpers import free_port

    from ops_platform.sources.health import check_sources
    sources = [notion(api), N8nSource(api_key="wrong", base_url=api.base_url),
               HubSpotSource(token="t", base_url=f"http://127.0.0.1:{free_port()}"), ChatLogsSource()]
    report = {h.source: (h.ok, h.detail.split(" in ")[0]) for h in check_sources(sources)}
    assert report == {"notion": (True, "200"), "n8n": (False, "HTTP 401"), "hubspot": (False, "ConnectError: no answer")}
    assert [(h.source, h.ok, h.detail) for h in check_sources([N8nSource()])] == [("n8n", True, "not configured")]


def test_hubspot_429_waits_for_its_rolling_window(api, postgres):
    api.contacts = [hubspot_contact(1, "a@example.com", NOW)]
    api.replies[HUBSPOT] = [rate_limited(HUBSPOT, retry_after=1)]
    source = HubSpotSource(token=api.token, base_url=api.base_url, **FAST)
    assert run_sync(source, postgres, None).items == 1
    gap = api.arrivals[HUBSPOT][1] - api.arrivals[HUBSPOT][0]
    assert gap >= 0.95, f"X-HubSpot-RateLimit-Interval-Milliseconds: 1000 obeyed, got {gap:.2f} s"


def test_429s_to_the_last_attempt_are_an_external_api_failure_not_unreachable(api, postgres):
    api.replies[N8N] = [rate_limited(N8N, retry_after=0)] * 3
    result = run_sync(N8nSource(api_key=api.token, base_url=api.base_url, retry_attempts=3, **FAST), postgres, None)
    assert (result.status, result.category) == ("failed", "external_api")
    assert "HTTP 429" in result.detail and len(api.requests[N8N]) == 3
    assert sql(postgres, "SELECT consecutive_unreachable FROM data_source_sync")[0][0] == 0
