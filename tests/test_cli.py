"""The command line: clear one-line errors, controls flipped in one command, settings validated."""

import os
import subprocess
import sys

import pytest
from helpers import sql


def ops(*args, **env):
    return subprocess.run([sys.executable, "-m", "ops_platform.cli", *args], capture_output=True, text=True,
                          env={**os.environ, **env}, timeout=120)


def test_an_unreachable_database_is_one_clear_line_without_the_password():
    result = ops("migrate", OPS_DATABASE_URL="postgresql://ops:hunter2@127.0.0.1:1/ops")
    assert result.returncode == 2
    assert result.stderr.startswith("ops: error: cannot reach the operational database at 127.0.0.1:1/ops")
    assert "Traceback" not in result.stderr and "hunter2" not in result.stderr + result.stdout


@pytest.mark.parametrize("variable, schedule", [("SEAT_USAGE_CRON_INTERVAL", "seat_usage_schedule"),
                                                ("CREDIT_USAGE_CRON_INTERVAL", "credit_usage_schedule"),
                                                ("VIS_CRON_SCHEDULE", "vis_schedule"),
                                                ("GUEST_CLEANUP_CRON", "guest_cleanup_schedule"),
                                                ("INSIGHTS_CRON", "insights_schedule"),
                                                ("COST_AGGREGATION_CRON", "cost_aggregation_schedule")])
def test_the_seeds_cron_variables_override_their_schedules(variable, schedule):
    result = ops("check", **{variable: "7 3 * * *"})
    line = next(line for line in result.stdout.splitlines() if schedule in line)
    assert result.returncode == 0 and "7 3 * * *" in line
    assert ops("check", **{variable: "every hour"}).returncode == 2


def test_a_cron_variable_that_is_no_setting_is_refused_not_ignored():
    from ops_platform.settings import Settings

    with pytest.raises(KeyError, match="NO_SUCH_CRON is not a setting"):
        Settings.load().cron("NO_SUCH_CRON", "0 * * * *")
    assert Settings.load().cron(None, "0 * * * *") == "0 * * * *"


def test_a_malformed_cron_override_is_a_clear_error():
    result = ops("check", ANALYTICS_SYNC_INTERVAL="*/15 * *")
    assert result.returncode == 2 and "Traceback" not in result.stderr
    assert "ANALYTICS_SYNC_INTERVAL='*/15 * *' is not a valid cron expression" in result.stderr
    good = ops("check", ANALYTICS_SYNC_INTERVAL="*/20 * * * *")
    assert good.returncode == 0 and "warehouse_sync_schedule" in good.stdout and "*/20 * * * *" in good.stdout


NEVER_FIRES = [  # every env-overridable cron, each with a cron that is valid syntax but has no next time
    ("ANALYTICS_SYNC_INTERVAL", "0 0 31 2 *", "(no 31 February)"),
    ("VIS_CRON_SCHEDULE", "0 2 31 4,6,9,11 *", "(no 31 April, June, September or November)"),
    ("SEAT_USAGE_CRON_INTERVAL", "0 * 30 2 *", "(no 30 February)"),
    ("CREDIT_USAGE_CRON_INTERVAL", "0 * 31 11 *", "(no 31 November)"),
    ("SYNTHETICS_SCHEDULE", "*/5 * 31 6 *", "(no 31 June)"),
    ("DAILY_DIGEST_CRON", "0 8 30,31 2 *", "(no 30 or 31 February)"),
    ("MORNING_CALL_CRON", "0 6 31 9 *", "(no 31 September)"),
]


@pytest.mark.parametrize("variable, value, reason", NEVER_FIRES)
def test_a_cron_override_that_never_fires_is_one_sentence_naming_the_variable(variable, value, reason):
    result = ops("check", **{variable: value})
    assert result.returncode == 2 and result.stdout == ""
    assert result.stderr == f"ops: error: {variable}={value!r} never fires {reason}: set a cron that has a next time\n"


def test_loading_the_definitions_with_a_never_firing_override_raises_that_sentence():
    load = subprocess.run([sys.executable, "-c", "import ops_platform.definitions"], capture_output=True, text=True,
                          env={**os.environ, "VIS_CRON_SCHEDULE": "0 2 31 4,6,9,11 *"}, timeout=120)
    assert load.returncode == 1
    assert load.stderr.splitlines()[-1] == (
        "ops_platform.settings.ConfigError: VIS_CRON_SCHEDULE='0 2 31 4,6,9,11 *' never fires"
        " (no 31 April, June, September or November): set a cron that has a next time")


def test_a_rare_cron_that_fires_is_accepted_and_one_dagster_refuses_is_one_sentence():
    leap_day = ops("check", VIS_CRON_SCHEDULE="0 2 29 2 *")
    assert leap_day.returncode == 0, leap_day.stderr
    assert any("vis_schedule" in line and "0 2 29 2 *" in line for line in leap_day.stdout.splitlines())
    refused = ops("check", DAILY_DIGEST_CRON="0 8 31 2 1")  # croniter: Mondays of February; Dagster: no
    assert refused.returncode == 2 and "Traceback" not in refused.stderr
    assert refused.stderr == ("ops: error: DAILY_DIGEST_CRON='0 8 31 2 1' is a cron Dagster's schedules refuse"
                              " (e.g. any 30 or 31 February, even with a day of week): set a cron that has a next"
                              " time\n")


def test_one_command_stops_everything_and_is_audited(postgres):
    result = ops("controls", "kill-switch", "on", OPS_DATABASE_URL=postgres.url)
    assert result.returncode == 0, result.stderr
    assert "kill_switch        True" in result.stdout
    assert sql(postgres, "SELECT kill_switch FROM controls")[0][0] is True
    audit = sql(postgres, "SELECT output_data FROM audit_log WHERE action_type = 'control'")
    assert audit[0][0]["kill_switch"] == "True" and audit[0][0]["by"].startswith("cli:")


def test_bad_control_input_changes_nothing(postgres):
    result = ops("controls", "quiet-hours", "25:00", "07:00", OPS_DATABASE_URL=postgres.url)
    assert result.returncode == 2 and "'25:00' is not a time of day" in result.stderr
    assert sql(postgres, "SELECT quiet_hours_start FROM controls")[0][0] is None


def test_notification_routes_from_the_environment_are_validated():
    bad = ops("check", OPS_NOTIFY_ROUTES='{"WARN": ["webhook"')
    assert bad.returncode == 2 and "OPS_NOTIFY_ROUTES is not valid JSON" in bad.stderr
    wrong_shape = ops("check", OPS_NOTIFY_ROUTES='["webhook"]')
    assert wrong_shape.returncode == 2 and "must be a JSON object" in wrong_shape.stderr


def test_dead_letters_are_listed_and_resolved(postgres):
    sql(postgres, "INSERT INTO dead_letters (source, dedup_key, error, attempts) VALUES "
                  "('sync', 'a', 'timeout', 3), ('notify:webhook', 'b', 'HTTP 500 after 3 attempts', 3)")
    listed = ops("dead-letters", OPS_DATABASE_URL=postgres.url)
    assert listed.returncode == 0 and "2 unresolved" in listed.stdout and "HTTP 500 after 3 attempts" in listed.stdout
    first = sql(postgres, "SELECT id FROM dead_letters WHERE dedup_key = 'a'")[0][0]
    assert ops("dead-letters", "resolve", str(first), OPS_DATABASE_URL=postgres.url).stdout.strip() == "resolved 1"
    assert sql(postgres, "SELECT dedup_key FROM dead_letters WHERE resolved_at IS NULL") == [("b",)]


def test_ops_check_lists_what_each_source_still_needs_and_validates_their_intervals():
    unset = {var: "" for var in ("OPS_NOTION_TOKEN", "OPS_N8N_URL", "OPS_N8N_API_KEY", "OPS_HUBSPOT_TOKEN")}
    result = ops("check", **unset | {"OPS_HUBSPOT_TOKEN": "pat-secret", "OPS_N8N_SCAN_INTERVAL_MINUTES": "15"})
    assert result.returncode == 0, result.stderr
    lines = {line.split()[0]: line for line in result.stdout.splitlines() if line.startswith("  ")}
    assert lines["notion"].endswith("set OPS_NOTION_TOKEN")
    assert lines["n8n"].endswith("set OPS_N8N_URL, OPS_N8N_API_KEY")
    assert lines["hubspot"].endswith("configured") and "pat-secret" not in result.stdout
    assert lines["chat_logs"].endswith("configured")
    assert "*/15 * * * *" in lines["sync_n8n_schedule"]
    bad = ops("check", OPS_PERIODIC_SCAN_INTERVAL_MINUTES="45")
    assert bad.returncode == 2 and "Traceback" not in bad.stderr
    assert "OPS_PERIODIC_SCAN_INTERVAL_MINUTES='45': 45 minutes does not divide the hour or the day" in bad.stderr


def test_the_seeds_interval_and_time_settings_are_validated_at_load():
    good = ops("check", OPS_DAILY_DIGEST_TIME="07:30", OPS_MORNING_CALL_TIME="05:45",
               OPS_WATCHERS_CHECK_INTERVAL_MINUTES="10", OPS_RETRY_QUEUE_CHECK_INTERVAL_SECONDS="15")
    assert good.returncode == 0, good.stderr
    lines = {line.split()[0]: line for line in good.stdout.splitlines() if line.startswith("  ")}
    assert "30 7 * * *" in lines["daily_digest_schedule"] and "45 5 * * *" in lines["morning_call_schedule"]
    for variable, value, says in [("OPS_DAILY_DIGEST_TIME", "8am", "must be a time of day HH:MM"),
                                  ("OPS_WATCHERS_CHECK_INTERVAL_MINUTES", "0", "must be a whole number above 0"),
                                  ("OPS_RETRY_QUEUE_CHECK_INTERVAL_SECONDS", "soon", "must be a whole number of seconds"),
                                  ("OPS_NOTION_SCAN_INTERVAL_MINUTES", "50", "does not divide the hour or the day")]:
        bad = ops("check", **{variable: value})
        assert bad.returncode == 2 and variable in bad.stderr and says in bad.stderr, bad.stderr
        assert "Traceback" not in bad.stderr
