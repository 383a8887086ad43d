"""Seed 002 build stats, inactive users, health checks; retention by table; execution compaction."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from helpers import sql

from ops_platform.assets.agent_builds import build_stats, inactive_users
from ops_platform.assets.operational import table_size_checks
from ops_platform.jobs.maintenance import (
    activity_cleanup_job,
    archive_cleanup_job,
    execution_compaction_job,
    log_retention_job,
)
from ops_platform.maintenance.archive import EXECUTIONS, ArchiveMismatch, move_to_warehouse
from ops_platform.resources.postgres import PostgresResource
from ops_platform.sync.engine import copy_into


def test_build_stats_match_the_seed_definition_and_are_one_row_per_hour(postgres, instance):
    sql(postgres, """INSERT INTO builds (prd_name, status, duration_ms) VALUES
        ('a', 'completed', 1000), ('b', 'completed', 3000), ('c', 'failed', 500), ('d', 'running', NULL)""")
    for _ in range(2):
        result = dg.materialize([build_stats], resources={"postgres": postgres}, instance=instance)
    metadata = {k: v.value for k, v in result.asset_materializations_for_node("build_stats")[0].metadata.items()}
    assert (metadata["totalBuilds"], metadata["completedBuilds"], metadata["failedBuilds"], metadata["runningBuilds"]) == (4, 2, 1, 1)
    assert metadata["successRate"] == 50.0 and metadata["avgDurationMs"] == 2000.0
    assert sql(postgres, "SELECT count(*) FROM build_stats_cache")[0][0] == 1


def test_inactive_users_are_marked_and_cleared(postgres, instance):
    sql(postgres, """INSERT INTO user_profiles (email, last_active_at, inactive_since) VALUES
        ('old@x', now() - interval '91 days', NULL), ('recent@x', now() - interval '89 days', NULL),
        ('back@x', now() - interval '1 day', now() - interval '10 days'), ('never@x', NULL, NULL)""")
    result = dg.materialize([inactive_users], resources={"postgres": postgres}, instance=instance)
    metadata = {k: v.value for k, v in result.asset_materializations_for_node("inactive_users")[0].metadata.items()}
    assert (metadata["inactive"], metadata["newly_inactive"], metadata["reactivated"]) == (1, 1, 1)
    marked = sql(postgres, "SELECT email FROM user_profiles WHERE inactive_since IS NOT NULL")
    assert marked == [("old@x",)]


def run(job, postgres, instance, warehouse=None):
    resources = {"postgres": postgres} | ({"warehouse": warehouse} if warehouse else {})
    return job.execute_in_process(instance=instance, resources=resources)


def test_activity_older_than_seven_days_is_deleted_and_the_result_logged(postgres, instance):
    sql(postgres, "INSERT INTO agent_activity_feed (event_type, ts) VALUES ('old', now() - interval '8 days'), "
                  "('new', now() - interval '6 days')")
    result = run(activity_cleanup_job, postgres, instance)
    assert sql(postgres, "SELECT event_type FROM agent_activity_feed") == [("new",)]
    step = result.get_step_success_events()[0]
    assert step.step_key == "activity_cleanup_job_op"
    logged = sql(postgres, "SELECT source, data FROM system_logs")
    assert logged[0][0] == "activity_cleanup_job" and logged[0][1]["deleted"] == 1 and "cutoffTime" in logged[0][1]


def test_archive_cleanup_never_deletes(postgres, instance):
    sql(postgres, """
        INSERT INTO audit_log (action, action_type, success, ts) VALUES ('old', 'system', true, now() - interval '366 days'),
                                                                   ('new', 'system', true, now() - interval '364 days');
        INSERT INTO retry_jobs (job_name, status, updated_at) VALUES ('done-old', 'completed', now() - interval '31 days'),
                                                                    ('pending-old', 'pending', now() - interval '31 days');
        INSERT INTO incidents (type, severity, title, status, dedup_key, resolved_at) VALUES
            ('t', 'WARN', 'resolved-old', 'resolved', 'a', now() - interval '91 days'),
            ('t', 'WARN', 'open', 'open', 'b', NULL)""")
    run(archive_cleanup_job, postgres, instance)
    assert sql(postgres, "SELECT action, archived FROM audit_log WHERE action_type = 'system' ORDER BY id") == [
        ("old", True), ("new", False)]
    assert sql(postgres, "SELECT job_name, archived FROM retry_jobs ORDER BY id") == [("done-old", True), ("pending-old", False)]
    assert sql(postgres, "SELECT title, archived FROM incidents ORDER BY id") == [("resolved-old", True), ("open", False)]


def test_system_logs_older_than_ninety_days_are_deleted(postgres, instance):
    sql(postgres, "INSERT INTO system_logs (source, message, ts) VALUES ('x', 'old', now() - interval '91 days'), "
                  "('x', 'new', now() - interval '89 days')")
    run(log_retention_job, postgres, instance)
    assert [r[0] for r in sql(postgres, "SELECT message FROM system_logs WHERE source = 'x'")] == ["new"]


def test_seed_001_audit_logs_are_deleted_after_90_days_and_seed_003_audit_trail_is_not(postgres, instance):
    """Each seed's rule on its own table: the product's `audit_logs` go after 90 days (at 03:00 UTC, with the
    system logs); the platform's `audit_log` is never deleted, however old."""
    sql(postgres, "INSERT INTO audit_logs (actor, action, ts) VALUES ('u1', 'user.created', now() - interval '91 days'), "
                  "('u1', 'user.updated', now() - interval '89 days')")
    sql(postgres, "INSERT INTO audit_log (action, action_type, success, ts) VALUES "
                  "('ancient', 'system', true, now() - interval '1000 days'), ('old', 'system', true, now() - interval '91 days')")
    result = run(log_retention_job, postgres, instance)
    assert [r.action for r in sql(postgres, "SELECT action FROM audit_logs")] == ["user.updated"]
    assert sql(postgres, "SELECT action, archived FROM audit_log WHERE action_type = 'system' ORDER BY id") == [
        ("ancient", False), ("old", False)]
    logged = sql(postgres, "SELECT data FROM system_logs WHERE source = 'log_retention_job' AND data ->> 'table' = 'audit_logs'")
    assert [row.data["deleted"] for row in logged] == [1]
    assert result.success
    run(archive_cleanup_job, postgres, instance)  # seed 003's own job flags it, and still deletes nothing
    assert sql(postgres, "SELECT action, archived FROM audit_log WHERE action_type = 'system' ORDER BY id") == [
        ("ancient", True), ("old", False)]


def seed_executions(postgres):
    sql(postgres, """INSERT INTO executions (agent_name, task_id, duration_ms, ts)
        SELECT 'A', g, g, now() - make_interval(days => CASE WHEN g % 2 = 0 THEN 31 ELSE 29 END)
        FROM generate_series(1, 1000) g""")


def archive_ids(warehouse):
    with warehouse.client() as ch:
        return ch.query("SELECT count(), uniqExact(id) FROM executions_archive FINAL").result_rows[0]


def test_compaction_moves_old_executions_to_clickhouse_then_deletes_them(postgres, warehouse, instance):
    seed_executions(postgres)
    result = run(execution_compaction_job, postgres, instance, warehouse)
    assert result.get_step_success_events()
    assert sql(postgres, "SELECT count(*), bool_and(ts > now() - interval '30 days') FROM executions")[0] == (500, True)
    assert archive_ids(warehouse) == (500, 500)


def test_compaction_that_died_half_way_finishes_without_loss_or_doubles(postgres, warehouse):
    seed_executions(postgres)
    cutoff = datetime.now(UTC) - timedelta(days=30)
    with warehouse.client() as ch:  # the first run copied a batch, then died before deleting
        copy_into(ch, "executions_archive", list(EXECUTIONS.columns), postgres,
                  "SELECT id, agent_name, task_id, duration_ms, ts FROM executions WHERE ts < %(c)s AND id <= 400", {"c": cutoff})
        moved = move_to_warehouse(EXECUTIONS, postgres, ch, cutoff, batch_rows=150)
    assert moved == 500
    assert archive_ids(warehouse) == (500, 500)
    assert sql(postgres, "SELECT count(*) FROM executions WHERE ts < :c", c=cutoff)[0][0] == 0


def test_compaction_deletes_nothing_when_the_archive_disagrees(postgres, warehouse):
    seed_executions(postgres)
    cutoff = datetime.now(UTC) - timedelta(days=30)
    with warehouse.client() as ch:  # a row in the archive that Postgres does not have
        ch.command("INSERT INTO executions_archive (id, agent_name, task_id, duration_ms, ts) "
                   "VALUES (3, 'ghost', 3, 1, now64(6) - INTERVAL 40 DAY)")
        sql(postgres, "DELETE FROM executions WHERE id = 3")
        with pytest.raises(ArchiveMismatch, match="nothing deleted"):
            move_to_warehouse(EXECUTIONS, postgres, ch, cutoff)
    assert sql(postgres, "SELECT count(*) FROM executions")[0][0] == 999


def check_results(postgres, instance):
    result = dg.materialize([table_size_checks], resources={"postgres": postgres}, instance=instance,
                            raise_on_error=False, selection=dg.AssetSelection.checks(table_size_checks))
    return {e.asset_key.path[-1]: e for e in result.get_asset_check_evaluations()}


def test_health_check_warns_above_the_seed_thresholds(postgres, instance):
    sql(postgres, "INSERT INTO tasks (agent_name, status) SELECT 'A', 'done' FROM generate_series(1, 100001)")
    checks = check_results(postgres, instance)
    assert not checks["tasks"].passed and checks["tasks"].severity == dg.AssetCheckSeverity.WARN
    assert checks["tasks"].metadata["rows"].value == 100_001
    assert checks["agent_activity_feed"].passed and checks["builds"].passed


def test_health_check_is_an_error_when_the_database_is_unreachable(instance):
    down = PostgresResource(url="postgresql://ops:pw@127.0.0.1:1/ops")
    checks = check_results(down, instance)
    assert all(not c.passed and c.severity == dg.AssetCheckSeverity.ERROR for c in checks.values())
    assert "cannot reach the operational database" in checks["tasks"].metadata["error"].value


def test_health_check_status_is_the_seeds_output_recorded_each_run_and_a_repeated_warning_alerts(postgres, instance):
    from datetime import UTC, datetime

    from ops_platform.monitoring.job_health import check_job_health
    first = check_results(postgres, instance)
    output = first["tasks"].metadata["health_check"].value
    assert output["status"] == "healthy" and output["taskTableSize"] == 0
    assert set(output) == {"buildTableSize", "taskTableSize", "executionTableSize", "activityTableSize",
                           "userTableSize", "timestamp", "status"}
    sql(postgres, "INSERT INTO tasks (agent_name, status) SELECT 'A', 'done' FROM generate_series(1, 100001)")

    def incidents():
        with postgres.begin() as conn:
            return [(i.type, i.subject) for i in check_job_health(conn, datetime.now(UTC))]

    assert check_results(postgres, instance)["tasks"].metadata["status"].value == "warning"
    assert incidents() == []  # one warning is not yet an alert
    check_results(postgres, instance)
    assert incidents() == [("health_check", "warning")]  # repeated
    assert [r.status for r in sql(postgres, "SELECT status FROM health_check_results ORDER BY id")] == [
        "healthy", "warning", "warning"]
    sql(postgres, "INSERT INTO health_check_results (status, error) VALUES ('error', 'count(*) on tasks timed out')")
    assert incidents() == [("health_check", "error")]
