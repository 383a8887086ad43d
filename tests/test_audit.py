"""Run-status sensors write every run's outcome; exhausted failures land in the dead-letter table."""

from types import SimpleNamespace

import dagster as dg
from helpers import sql

from ops_platform.assets.agent_builds import agent_stats_cache
from ops_platform.framework.controls import set_controls
from ops_platform.runs.audit import error_chain
from ops_platform.sensors.runs import audit_run_failure, audit_run_success


def test_a_successful_run_is_audited_once_with_its_summary(postgres, instance):
    sql(postgres, "INSERT INTO agents (name) VALUES ('A'), ('B')")
    result = dg.materialize([agent_stats_cache], resources={"postgres": postgres}, instance=instance)
    run = instance.get_run_by_id(result.run_id)
    for _ in range(2):  # a sensor that sees the same run twice still writes one row
        ctx = dg.build_run_status_sensor_context(sensor_name="audit_run_success", dagster_instance=instance,
                                                 dagster_run=run, dagster_event=result.get_run_success_event(),
                                                 resources={"postgres": postgres})
        audit_run_success(ctx)
    rows = sql(postgres, "SELECT action, run_id, success, duration_ms, output_data FROM audit_log WHERE action_type='run'")
    assert len(rows) == 1
    action, run_id, success, duration_ms, output = rows[0]
    assert (action, run_id, success) == (run.job_name, result.run_id, True)
    assert duration_ms is not None and duration_ms >= 0
    assert output["agent_stats_cache"]["computed"] == 2


@dg.op
def gives_up():
    raise dg.Failure(description="upstream API returned 401", allow_retries=False)


@dg.job
def failing_job():
    gives_up()


def audit_failure(postgres, instance, run_id):
    run = instance.get_run_by_id(run_id)
    failure = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.RUN_FAILURE).records[0]
    ctx = dg.build_run_status_sensor_context(sensor_name="audit_run_failure", dagster_instance=instance, dagster_run=run,
                                             dagster_event=failure.event_log_entry.dagster_event,
                                             resources={"postgres": postgres}).for_run_failure()
    audit_run_failure(ctx)


def test_a_failed_run_that_will_not_be_retried_is_audited_and_dead_lettered(postgres, instance):
    result = failing_job.execute_in_process(instance=instance, raise_on_error=False)
    audit_failure(postgres, instance, result.run_id)
    success, error = sql(postgres, "SELECT success, error FROM audit_log WHERE action_type = 'run'")[0]
    assert success is False and "upstream API returned 401" in error
    assert sql(postgres, "SELECT source, dedup_key FROM dead_letters") == [("failing_job", f"run:{result.run_id}")]


def test_a_run_dagster_will_retry_is_audited_but_not_dead_lettered(postgres, instance):
    result = failing_job.execute_in_process(instance=instance, raise_on_error=False, tags={"dagster/will_retry": "true"})
    audit_failure(postgres, instance, result.run_id)
    assert sql(postgres, "SELECT count(*) FROM audit_log WHERE action_type = 'run'")[0][0] == 1
    assert sql(postgres, "SELECT count(*) FROM dead_letters")[0][0] == 0


def test_a_refusal_is_a_decision_not_a_dead_letter(postgres, instance):
    with postgres.begin() as conn:
        set_controls(conn, "test", kill_switch=True)
    result = dg.materialize([agent_stats_cache], resources={"postgres": postgres}, instance=instance,
                            raise_on_error=False)
    audit_failure(postgres, instance, result.run_id)
    success, error = sql(postgres, "SELECT success, error FROM audit_log WHERE action_type = 'run'")[0]
    assert success is False and "Refused to run" in error and "kill switch is on" in error
    assert sql(postgres, "SELECT count(*) FROM dead_letters")[0][0] == 0


def test_the_audited_error_follows_the_cause_chain():
    inner = SimpleNamespace(message='ProgrammingError: relation "x" does not exist\n', cause=None)
    outer = SimpleNamespace(message="Exceeded max_retries of 3\n", cause=inner)  # the shape Dagster reports
    assert error_chain(outer) == 'Exceeded max_retries of 3 <- ProgrammingError: relation "x" does not exist'
