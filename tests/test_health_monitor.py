"""Health monitor: external endpoints (real HTTP on 127.0.0.1), the switches in the report, one DB latency
sample per tick for the latency watcher, and a clear error for a bad endpoint list."""

import dagster as dg
import pytest
from endpoints import Endpoints, closed_port_url
from helpers import sql

from ops_platform.framework.controls import set_controls
from ops_platform.monitoring.health import ENDPOINTS_VAR, health_endpoints
from ops_platform.sensors.monitoring import health_monitor
from ops_platform.settings import ConfigError


def tick(postgres, instance):
    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as ctx:
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
