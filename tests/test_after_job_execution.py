"""Seed 003 afterJobExecution: failed runs sorted by the seed's error categories; retryable ones rerun by the
retry queue with its backoff; each failed run notified once, with the severity its category and the job's
failures in a row give (auth WARN at once, transient INFO then WARN from the 3rd, ...)."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import httpx
import pytest
from helpers import sql
from hypothesis import given, settings, strategies as st

from ops_platform.framework.error_categories import HANDLING, categorize
from ops_platform.notifications import Notification, NotifierResource
from ops_platform.runs.failure_notices import failure_notice
from ops_platform.retry_queue.queue import process_ready
from ops_platform.retry_queue.handlers import RERUN
from ops_platform.retry_queue.reruns import enqueue_rerun
from ops_platform.sensors.runs import after_job_execution


@pytest.mark.parametrize(("classes", "message", "metadata", "expected"), [
    (["Failure", "ConnectError"], "no answer", {}, "transient"),
    (["DatabaseUnavailable"], "cannot reach the operational database", {}, "database"),
    (["Failure"], "hubspot /x: HTTP 401: bad token (credentials refused; not retried)", {"category": "auth"}, "auth"),
    (["Failure"], "n8n: HTTP 429 after 5 attempts", {"category": "external_api"}, "external_api"),
    (["ConfigError"], "OPS_X must be a number", {}, "validation"),
    (["Failure"], "Refused to run x: the kill switch is on", {"refused_by": "the kill switch is on"}, "kill_switch"),
    (["DeliveryError"], "webhook: HTTP 500 after 3 attempts", {}, "external_api"),
    (["RuntimeError"], "something new", {}, "transient"),
])
def test_categories(classes, message, metadata, expected):
    assert categorize(classes, message, metadata) == expected


def failing_job(error: Exception, tags=None) -> dg.JobDefinition:
    @dg.op
    def work():
        raise error

    @dg.job(name="flaky_job", tags=tags or {})
    def flaky_job():
        work()

    return flaky_job


def after(postgres, instance, job):
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    run = instance.get_run_by_id(result.run_id)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)
    context = dg.build_run_status_sensor_context(sensor_name="after_job_execution", dagster_instance=instance,
                                                 dagster_run=run, dagster_event=failure,
                                                 resources={"postgres": postgres}).for_run_failure()
    return result.run_id, after_job_execution(context)


def test_a_transient_failure_is_queued_for_a_rerun_with_the_seeds_attempts(postgres, instance):
    run_id, _ = after(postgres, instance, failing_job(httpx.ConnectError("no route")))
    [(name, payload, attempts)] = sql(postgres, "SELECT job_name, payload, max_attempts FROM retry_jobs")
    assert (name, payload["job_name"], payload["run_id"], payload["category"], attempts) == (
        RERUN, "flaky_job", run_id, "transient", 5)
    after(postgres, instance, failing_job(httpx.ConnectError("again"), tags={"ops/retry_queue": "off"}))
    assert sql(postgres, "SELECT count(*) FROM retry_jobs")[0][0] == 1  # an opted-out job is not queued


def notices(result) -> list[Notification]:
    """The notifications a sensor result asks the notify job to send."""
    if result is None:
        return []
    return [Notification(**m) for r in result.run_requests
            for m in r.run_config["ops"]["send_notifications"]["config"]["messages"]]


def test_auth_alerts_at_once_and_validation_is_only_logged(postgres, instance):
    run_id, result = after(postgres, instance, failing_job(dg.Failure("hubspot: HTTP 401: bad token",
                                                                      metadata={"category": "auth"})))
    [notice] = notices(result)
    assert (notice.type, notice.severity, notice.dedup_key) == ("job_failed", "WARN", f"job_failed:{run_id}")
    after(postgres, instance, failing_job(ValueError("a row without an id")))
    assert sql(postgres, "SELECT count(*) FROM retry_jobs")[0][0] == 0
    logged = sql(postgres, "SELECT output_data->>'after_job_execution' FROM audit_log WHERE action_type = 'system' "
                           "ORDER BY id")
    assert [r[0] for r in logged] == ["auth", "validation"]


@pytest.mark.parametrize(("error", "category", "severity"), [
    (httpx.ConnectError("no route"), "transient", "INFO"),
    (dg.Failure("hubspot: HTTP 401: bad token", metadata={"category": "auth"}), "auth", "WARN"),
    (ValueError("a row without an id"), "validation", "INFO"),
    (dg.Failure("n8n: HTTP 429 after 5 attempts", metadata={"category": "external_api"}), "external_api", "INFO"),
    (dg.Failure("cannot reach the operational database", metadata={"category": "database"}), "database", "INFO"),
])
def test_a_first_failure_is_notified_with_its_categorys_severity(postgres, instance, error, category, severity):
    run_id, result = after(postgres, instance, failing_job(error))
    [notice] = notices(result)
    assert (notice.severity, notice.meta["category"], notice.meta["failures"]) == (severity, category, 1)
    assert notice.dedup_key == f"job_failed:{run_id}"


def test_a_refused_run_is_not_notified(postgres, instance):
    _, result = after(postgres, instance, failing_job(dg.Failure("Refused to run: the kill switch is on",
                                                                 metadata={"refused_by": "the kill switch is on"})))
    assert notices(result) == []


@pytest.mark.parametrize(("error", "severities"), [
    (httpx.ConnectError("no route"), ["INFO", "INFO", "WARN", "WARN"]),  # transient: WARN after 3
    (dg.Failure("n8n: HTTP 502", metadata={"category": "external_api"}), ["INFO", "INFO", "WARN", "WARN"]),
    (dg.Failure("no database", metadata={"category": "database"}), ["INFO", "WARN", "WARN", "WARN"]),  # persistent
    (ValueError("a row without an id"), ["INFO", "INFO", "INFO", "INFO"]),
])
def test_failures_in_a_row_escalate_info_to_warn_and_a_success_starts_again(postgres, instance, error, severities):
    seen = [notices(after(postgres, instance, failing_job(error))[1])[0].severity for _ in severities]
    assert seen == severities

    @dg.job(name="flaky_job")
    def flaky_job():
        dg.op(name="work")(lambda: None)()

    assert flaky_job.execute_in_process(instance=instance).success
    [notice] = notices(after(postgres, instance, failing_job(error))[1])
    assert (notice.severity, notice.meta["failures"]) == (severities[0], 1)


def test_a_failure_notifies_once(postgres, instance):
    job = failing_job(httpx.ConnectError("no route"))
    result = job.execute_in_process(instance=instance, raise_on_error=False)
    run = instance.get_run_by_id(result.run_id)
    failure = next(e for e in result.all_events if e.event_type == dg.DagsterEventType.RUN_FAILURE)

    def evaluate():
        return after_job_execution(dg.build_run_status_sensor_context(
            sensor_name="after_job_execution", dagster_instance=instance, dagster_run=run, dagster_event=failure,
            resources={"postgres": postgres}).for_run_failure())

    first, again = evaluate(), evaluate()
    assert [r.run_key for r in first.run_requests] == [r.run_key for r in again.run_requests]  # one run for both
    [notice] = notices(first)
    assert NotifierResource(postgres=postgres).send(notice) == "digest"
    assert evaluate() is None  # recorded: not asked for again
    assert sql(postgres, "SELECT count(*) FROM notifications WHERE dedup_key = :k", k=notice.dedup_key) == [(1,)]


@settings(max_examples=60, deadline=None)
@given(category=st.sampled_from(sorted(HANDLING)), failures=st.integers(min_value=1, max_value=50))
def test_the_severity_rule_holds_for_any_streak(category, failures):
    notice = failure_notice("job", "run-1", category, failures, "boom")
    if category == "kill_switch":
        assert notice is None
        return
    warn_from = {"auth": 1, "database": 2, "transient": 3, "external_api": 3, "validation": None}[category]
    expected = "WARN" if warn_from is not None and failures >= warn_from else "INFO"
    assert (notice.severity, notice.dedup_key, notice.meta["failures"]) == (expected, "job_failed:run-1", failures)


def test_the_queue_reruns_the_job_from_the_code_location(postgres, instance, platform_env, monkeypatch, tmp_path):
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path))
    with postgres.begin() as conn:
        job = enqueue_rerun(conn, "log_retention_job", "run-that-failed", "database", {})
    [(attempts,)] = sql(postgres, "SELECT max_attempts FROM retry_jobs")
    assert attempts == 1  # database errors: retried once
    from ops_platform.notifications import NotifierResource
    process_ready(postgres, NotifierResource(postgres=postgres), "pass-1", now=datetime.now(UTC) + timedelta(minutes=1))
    assert sql(postgres, "SELECT status FROM retry_jobs WHERE id = :id", id=job) == [("completed",)]
    with dg.DagsterInstance.get() as home:
        [rerun] = home.get_runs()
    assert (rerun.job_name, rerun.status, rerun.tags["ops/rerun_of"]) == (
        "log_retention_job", dg.DagsterRunStatus.SUCCESS, "run-that-failed")
