"""Seed 003's interval settings become crons that fire exactly every N minutes, or a clear error at load;
the sources' configuration names what is missing and never holds a secret's value."""

from datetime import datetime

import dagster as dg
import pytest
from croniter import croniter
from hypothesis import given, settings
from hypothesis import strategies as st

from ops_platform.settings import ConfigError, Settings, interval_cron
from ops_platform.sources.configured import build_sources, demo_environment, needs

VALID = [1, 2, 3, 4, 5, 6, 10, 12, 15, 20, 30, 60, 120, 180, 240, 360, 480, 720, 1440]


@pytest.mark.parametrize(("minutes", "cron"), [(30, "*/30 * * * *"), (60, "0 * * * *"), (5, "*/5 * * * *"),
                                               (120, "0 */2 * * *"), (1440, "0 0 * * *")])
def test_named_intervals(minutes, cron):
    assert interval_cron(minutes) == cron


@settings(deadline=None)
@given(st.sampled_from(VALID))
def test_a_valid_interval_fires_exactly_every_n_minutes_for_a_day(minutes):
    it = croniter(interval_cron(minutes), datetime(2026, 3, 1, 0, 0))
    times = [datetime(2026, 3, 1, 0, 0)] + [it.get_next(datetime) for _ in range(1440 // minutes)]
    assert {(b - a).total_seconds() for a, b in zip(times, times[1:], strict=False)} == {minutes * 60}


@given(st.integers(1, 10_000).filter(lambda m: m not in VALID))
def test_an_interval_that_drifts_against_the_clock_is_refused(minutes):
    with pytest.raises(ValueError, match="does not divide the hour or the day"):
        interval_cron(minutes)


@pytest.mark.parametrize("raw", ["0", "-5", "abc", "7", "90", "1.5"])
def test_a_bad_setting_names_the_variable(monkeypatch, raw):
    monkeypatch.setenv("OPS_N8N_SCAN_INTERVAL_MINUTES", raw)
    with pytest.raises(ConfigError, match="OPS_N8N_SCAN_INTERVAL_MINUTES"):
        Settings.load()


def test_unset_means_the_seeds_default(monkeypatch):
    monkeypatch.delenv("OPS_PERIODIC_SCAN_INTERVAL_MINUTES", raising=False)
    settings = Settings.load()
    assert (settings.periodic_scan_interval_minutes, interval_cron(settings.periodic_scan_interval_minutes)) == (
        30, "*/30 * * * *")


def test_sources_say_what_they_still_need(settings_env):
    for var in ("OPS_NOTION_TOKEN", "OPS_N8N_URL", "OPS_N8N_API_KEY", "OPS_HUBSPOT_TOKEN"):
        settings_env(var, "")
    assert needs() == {"notion": ["OPS_NOTION_TOKEN"], "n8n": ["OPS_N8N_URL", "OPS_N8N_API_KEY"],
                       "hubspot": ["OPS_HUBSPOT_TOKEN"], "chat_logs": []}
    for var, value in demo_environment("http://127.0.0.1:9", configured={}).items():
        settings_env(var, value)
    assert needs() == {"notion": [], "n8n": [], "hubspot": [], "chat_logs": []}


def test_a_token_is_an_env_var_reference_not_its_value(settings_env):
    settings_env("OPS_HUBSPOT_TOKEN", "pat-secret-value")
    source = build_sources()["hubspot_source"]
    assert isinstance(source.token, dg.EnvVar) and source.token.env_var_name == "OPS_HUBSPOT_TOKEN"
    assert "pat-secret-value" not in repr(source)


def test_a_url_without_a_scheme_stops_the_load(monkeypatch):
    from ops_platform.settings import Settings
    monkeypatch.setenv("OPS_N8N_URL", "n8n.example.com")
    with pytest.raises(ConfigError, match="OPS_N8N_URL must be an http"):
        Settings.load()


def test_demo_mode_points_only_unconfigured_sources_at_the_stand_ins():
    env = demo_environment("http://127.0.0.1:9", configured={"OPS_HUBSPOT_TOKEN": "real"})
    assert env == {"OPS_NOTION_URL": "http://127.0.0.1:9", "OPS_NOTION_TOKEN": "demo-token",
                   "OPS_N8N_URL": "http://127.0.0.1:9", "OPS_N8N_API_KEY": "demo-token"}


def test_seconds_and_times_of_day(monkeypatch):
    from ops_platform.settings import daily_cron
    assert Settings.load().retry_queue_check_interval_seconds == 30
    monkeypatch.setenv("OPS_RETRY_QUEUE_CHECK_INTERVAL_SECONDS", "0")
    with pytest.raises(ConfigError, match="OPS_RETRY_QUEUE_CHECK_INTERVAL_SECONDS must be a whole number of seconds"):
        Settings.load()
    monkeypatch.delenv("OPS_RETRY_QUEUE_CHECK_INTERVAL_SECONDS")
    assert daily_cron(Settings.load().daily_digest_time) == "0 8 * * *"
    monkeypatch.setenv("OPS_DAILY_DIGEST_TIME", "7:45")
    assert daily_cron(Settings.load().daily_digest_time) == "45 7 * * *"
    for bad in ("24:00", "8", "08:5", "eight"):
        monkeypatch.setenv("OPS_DAILY_DIGEST_TIME", bad)
        with pytest.raises(ConfigError, match="OPS_DAILY_DIGEST_TIME must be a time of day"):
            Settings.load()
