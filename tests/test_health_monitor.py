"""Health monitor: external endpoints (real HTTP on 127.0.0.1), the switches in the report, one DB latency
sample per tick for the latency watcher, and a clear error for a bad endpoint list."""

import dagster as dg
import pytest
from endpoints import Endpoints, closed_port_url
from helpers import health_resources, sql

from ops_platform.framework.controls import set_controls
from ops_platform.monitoring.health import ENDPOINTS_VAR, health_endpoints
from ops_platform.sensors.monitoring import health_monitor
from ops_platform.notifications import NotifierResource
from ops_platform.notifications.transports import ChannelsResource
from ops_platform.settings import ConfigError
from ops_platform.sources.n8n import N8nSource
from ops_platform.sources.notion import NotionSource


def tick(postgres, instance, channels=None, **sources):
    resources = health_resources(postgres, **sources,
                                 notifier=NotifierResource(postgres=postgres, channels=channels or ChannelsResource()))
    with dg.build_sensor_context(instance=instance, resources=resources) as ctx:
        return health_monitor(ctx)


def test_failing_endpoints_are_reported_even_with_jobs_disabled(postgres, instance, settings_env):
    with postgres.begin() as conn:
        set_controls(conn, "test", jobs_enabled=False, kill_switch=True)
    with Endpoints() as api:
        down = closed_port_url("/status")
        settings_env(ENDPOINTS_VAR, f"{api.url('/ok')}, {api.url('/error')}?key=s3cret,{down}")
        result = tick(postgres, instance)
    assert len(result.run_requests) == 1
    body = result.run_requests[0].run_config["ops"]["send_notifications"]["config"]["messages"][0]["body"]
    assert f"endpoint {api.url('/error')}: got status 500" in body
    assert f"endpoint {down}: ConnectError" in body
    assert f"endpoint {api.url('/ok')}: 200 in" in body
    assert "kill_switch: True" in body and "jobs_enabled: False" in body
    assert "s3cret" not in body


def test_healthy_tick_records_one_latency_sample(postgres, instance, settings_env):
    with Endpoints() as api:
        settings_env(ENDPOINTS_VAR, api.url("/ok"))
        first = tick(postgres, instance)
        second = tick(postgres, instance)
    assert first.run_requests == [] and first.skip_reason.skip_message.startswith("healthy")
    assert "kill_switch': False" in first.skip_reason.skip_message
    assert second.run_requests == []
    samples = sql(postgres, "SELECT latency_ms FROM db_latency_samples")
    assert len(samples) == 2 and all(0 <= s.latency_ms < 1000 for s in samples)
    assert api.hits == ["/ok", "/ok"]


def test_a_bad_endpoint_list_is_refused_without_echoing_it(settings_env):
    settings_env(ENDPOINTS_VAR, "https://ok.example.com,ftp://user:s3cret@files.example.com")
    with pytest.raises(ConfigError, match="OPS_HEALTH_ENDPOINTS: entry 2 is not an http\\(s\\) URL") as error:
        health_endpoints()
    assert "s3cret" not in str(error.value)



def test_the_three_apis_are_checked_and_an_unconfigured_one_is_not_a_problem(postgres, instance, settings_env):
    from ops_platform.sources.standins import StandIns
    settings_env(ENDPOINTS_VAR, "")
    with StandIns() as api:
        result = tick(postgres, instance, notion_source=NotionSource(token=api.token, base_url=api.base_url),
                      n8n_source=N8nSource(api_key="revoked", base_url=api.base_url))
        assert len(api.requests["notion"]) == 1 and len(api.requests["n8n"]) == 1
    body = result.run_requests[0].run_config["ops"]["send_notifications"]["config"]["messages"][0]["body"]
    assert "n8n API: HTTP 401" in body
    assert "api notion: 200 in" in body and "api hubspot: not configured" in body
    assert "revoked" not in body


def test_disk_usage_over_the_threshold_is_a_problem(postgres, monkeypatch):
    from ops_platform.monitoring.health import check_health
    problems, report = check_health(postgres, disk_alert_percent=0, endpoints=[])
    assert report["disk_used_percent"] > 0
    assert any(p.startswith(f"disk {report['disk_used_percent']}% used (alert at 0%)") for p in problems)
    assert not any(p.startswith("disk") for p in check_health(postgres, disk_alert_percent=100.1, endpoints=[])[0])


def test_with_postgres_down_it_alerts_without_it_hourly_and_says_when_it_is_back(postgres, instance, monkeypatch,
                                                                                 tmp_path, settings_env):
    from helpers import Receiver

    from ops_platform.resources.postgres import PostgresResource
    settings_env(ENDPOINTS_VAR, "")
    settings_env("OPS_HOME", str(tmp_path))
    down = PostgresResource(url="postgresql://ops:pw@127.0.0.1:1/ops")
    with Receiver(secret="s") as hook:
        channels = ChannelsResource(webhook_url=hook.url, webhook_secret="s")
        first = tick(down, instance, channels=channels)
        second = tick(down, instance, channels=channels)
        back = tick(postgres, instance, channels=channels)
        titles = [r.json["title"] for r in hook.requests]
    assert first.skip_reason.skip_message.startswith("UNHEALTHY (alerted without the database)")
    assert second.skip_reason.skip_message.startswith("UNHEALTHY (alerted within the hour)")
    assert titles == ["Operational database DOWN", "Operational database back"]
    assert back.skip_reason.skip_message.startswith("healthy")
    log = (tmp_path / "health_alerts.log").read_text()
    assert "cannot reach the operational database at 127.0.0.1:1/ops" in log and ":pw@" not in log
