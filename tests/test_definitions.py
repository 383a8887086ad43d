"""The code location loads, passes Dagster's validation, and holds the foundation's inventory."""

import os
import subprocess
import sys
from pathlib import Path

import dagster as dg

from ops_platform.definitions import defs

ROOT = Path(__file__).parent.parent
INVENTORY = {
    "jobs": {"agent_stats_job", "warehouse_sync_job", "stalled_builds_job", "notify_job", "build_stats_job",
             "inactive_users_job", "health_check_job", "activity_cleanup_job", "execution_compaction_job",
             "log_retention_job", "archive_cleanup_job", "seat_usage_job", "credit_usage_job", "campaign_metrics_job",
             "vis_job", "cache_warmer_job", "auto_transition_job", "ai_budget_reset_job",
             "release_held_job", "retry_queue_job", "events_job", "synthetics_job", "digests_job",
             "scheduled_notifications_job", "daily_digest_job", "morning_call_job", "canvas_alerts_job",
             "set_campaign_status_job", "dagster_history_job", "sync_notion_job", "sync_n8n_job", "sync_hubspot_job",
             "periodic_scan", "guest_cleanup_job", "insights_job", "cost_aggregation_job"},
    "schedules": {  # the seeds' cron strings
        "agent_stats_schedule": "*/5 * * * *", "warehouse_sync_schedule": "*/15 * * * *",
        "build_stats_schedule": "0 * * * *", "inactive_users_schedule": "0 1 * * *",
        "health_check_schedule": "*/30 * * * *", "activity_cleanup_schedule": "0 * * * *",
        "execution_compaction_schedule": "0 0 * * *", "log_retention_schedule": "0 3 * * *",
        "archive_cleanup_schedule": "0 2 * * *", "seat_usage_schedule": "0 * * * *",
        "credit_usage_schedule": "0 * * * *", "campaign_metrics_schedule": "0 * * * *", "vis_schedule": "0 2 * * *",
        "auto_transition_schedule": "0 * * * *", "ai_budget_reset_schedule": "0 0 * * *",
        "cache_warmer_schedule": "30 7 * * 1-5", "synthetics_schedule": "*/5 * * * *",
        "daily_digest_schedule": "0 8 * * *", "morning_call_schedule": "0 6 * * *",
        "dagster_history_schedule": "30 4 * * *",  # issue 13: Dagster's own history
        # seed 003's intervals in minutes: notion 60, n8n 30, hubspot 60, periodic scan 30
        "sync_notion_schedule": "0 * * * *", "sync_n8n_schedule": "*/30 * * * *", "sync_hubspot_schedule": "0 * * * *",
        "periodic_scan_schedule": "*/30 * * * *",
        "guest_cleanup_schedule": "0 4 * * *", "insights_schedule": "0 5 * * *", "cost_aggregation_schedule": "0 1 * * *",
    },
    "sensors": {"stalled_builds_sensor", "health_monitor", "audit_run_success", "audit_run_failure",
                "audit_run_canceled", "held_notifications_sensor", "retry_queue_sensor", "events_outbox_sensor",
                "watchers", "job_failure_streaks", "digests_sensor", "scheduled_notifications_sensor",
                "canvas_alerts_sensor", "dead_run_workers", "job_health", "after_job_execution", "campaign_snapshot_sensor"},
    "assets": {"agent_stats_cache", "build_stats", "inactive_users", "warehouse/builds", "postgres/tasks",
               "seat_usage", "credit_usage", "warehouse/campaign_metrics_hourly", "warehouse/vis_scores",
               "warehouse/campaigns", "warehouse/volunteer_activities",
               "notion_sync", "n8n_sync", "hubspot_sync", "chat_logs_sync", "postgres/insights", "warehouse/cost_daily"},
}


def test_every_inventory_item_is_defined():
    assert INVENTORY["jobs"] <= {j.name for j in defs.resolve_all_job_defs()}
    assert {s.name: s.cron_schedule for s in defs.schedules} == INVENTORY["schedules"]
    assert INVENTORY["sensors"] <= {s.name for s in defs.sensors}
    keys = {k.to_user_string() for k in defs.resolve_asset_graph().get_all_asset_keys()}
    assert INVENTORY["assets"] <= keys
    assert all(s.default_status == dg.DefaultScheduleStatus.RUNNING for s in defs.schedules)
    central = {s.name for s in defs.schedules if s.execution_timezone == "America/Chicago"}
    # seed 003: cleanup 02:00, morning call 06:00, daily digest 08:00 Central; seed 004's cache warmer
    assert central == {"archive_cleanup_schedule", "morning_call_schedule", "daily_digest_schedule",
                       "cache_warmer_schedule"}


def test_secrets_are_environment_variables_not_values(monkeypatch):
    resources = defs.resources
    assert isinstance(resources["postgres"].url, dg.EnvVar)
    assert isinstance(resources["warehouse"].url, dg.EnvVar)
    for key, field in (("notion_source", "token"), ("n8n_source", "api_key"), ("hubspot_source", "token")):
        assert getattr(resources[key], field) is None or isinstance(getattr(resources[key], field), dg.EnvVar)


def test_dagster_and_dg_validate_the_code_location(tmp_path):
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path)}
    validate = subprocess.run([sys.executable, "-m", "dagster", "definitions", "validate", "-w",
                               str(ROOT / "workspace.yaml")], cwd=ROOT, env=env, capture_output=True, text=True)
    assert validate.returncode == 0, validate.stdout + validate.stderr
    dg_check = subprocess.run([str(Path(sys.executable).parent / "dg"), "check", "defs"], cwd=ROOT, env=env,
                              capture_output=True, text=True)
    assert dg_check.returncode == 0, dg_check.stdout + dg_check.stderr
