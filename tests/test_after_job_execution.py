"""Seed 003 afterJobExecution: failed runs sorted by the seed's error categories; retryable ones rerun by the
retry queue with its backoff, auth failures alerted at once, validation failures only logged."""

from datetime import UTC, datetime, timedelta

import dagster as dg
import httpx
import pytest
from helpers import sql

from ops_platform.framework.error_categories import categorize
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


def test_auth_alerts_at_once_and_validation_is_only_logged(postgres, instance):
    _, result = after(postgres, instance, failing_job(dg.Failure("hubspot: HTTP 401: bad token",
                                                                 metadata={"category": "auth"})))
    assert [r.run_config["ops"]["send_notifications"]["config"]["messages"][0]["type"] for r in result.run_requests] \
        == ["incident.job_auth_failed"]
    after(postgres, instance, failing_job(ValueError("a row without an id")))
    assert sql(postgres, "SELECT count(*) FROM retry_jobs")[0][0] == 0
    logged = sql(postgres, "SELECT output_data->>'after_job_execution' FROM audit_log WHERE action_type = 'system' "
                           "ORDER BY id")
    assert [r[0] for r in logged] == ["auth", "validation"]


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
