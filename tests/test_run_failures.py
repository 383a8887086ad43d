"""Run-failure streaks: 3 consecutive failed runs of one job open one incident; 2 do not; a success resets
the count; refused runs and other jobs do not count. Real runs in a real Dagster instance."""

import dagster as dg
from helpers import HOUR_SECONDS, in_one_window, sql

from ops_platform.framework.controls import READ_JOB, gate_tags, set_controls
from ops_platform.framework.guard import guard_run
from ops_platform.jobs.notifications import notify_job
from ops_platform.notifications import NotifierResource
from ops_platform.resources.postgres import PostgresResource
from ops_platform.sensors.runs import job_failure_streaks


class OutcomeConfig(dg.Config):
    fail: bool = True


@dg.op(tags=gate_tags(READ_JOB))
def maybe_fail(context: dg.OpExecutionContext, config: OutcomeConfig, postgres: PostgresResource) -> None:
    guard_run(context, postgres)
    if config.fail:
        raise RuntimeError("upstream API answered 503")


@dg.job
def flaky_job():
    maybe_fail()


@dg.job
def other_job():
    maybe_fail()


def run(postgres, instance, fail=True, job=flaky_job):
    return job.execute_in_process(run_config={"ops": {"maybe_fail": {"config": {"fail": fail}}}}, instance=instance,
                                  resources={"postgres": postgres}, raise_on_error=False)


def evaluate(postgres, instance, result):
    context = dg.build_run_status_sensor_context(
        sensor_name="job_failure_streaks", dagster_event=result.get_run_failure_event(), dagster_instance=instance,
        dagster_run=result.dagster_run, resources={"postgres": postgres})
    return job_failure_streaks(context)


def incidents(postgres):
    return sql(postgres, "SELECT type, severity, title FROM incidents ORDER BY id")


def test_two_failures_nothing_three_one_incident_delivered_once(postgres, instance):
    for _ in range(2):
        assert evaluate(postgres, instance, run(postgres, instance)) is None
    run(postgres, instance, job=other_job)  # another job's failure is not part of flaky_job's streak
    assert incidents(postgres) == []

    # The 4th failure comes in the hour of the 3rd (incidents are keyed by the hour a run ended).
    third, fourth = in_one_window(lambda: run(postgres, instance), times=2, window_seconds=HOUR_SECONDS)
    # The same failure seen twice: same run asked for, no new incident.
    result, again = in_one_window(lambda: evaluate(postgres, instance, third), times=2)
    assert incidents(postgres) == [("job_failing", "WARN", "Job failing: flaky_job failed 3 times in a row")]
    body, key = sql(postgres, "SELECT body, dedup_key FROM incidents")[0]
    assert third.run_id in body and "upstream API answered 503" in body
    assert key.startswith("job_failing:flaky_job:")
    assert len(result.run_requests) == 1
    assert [r.run_key for r in again.run_requests] == [r.run_key for r in result.run_requests]

    notify_job.execute_in_process(run_config=result.run_requests[0].run_config, instance=instance,
                                  resources={"notifier": NotifierResource(postgres=postgres)})
    assert sql(postgres, "SELECT type, status FROM notifications") == [("incident.job_failing", "digest")]
    assert evaluate(postgres, instance, fourth) is None  # 4th failure, same hour: no duplicate
    assert len(incidents(postgres)) == 1


def test_a_success_in_between_resets_the_count(postgres, instance):
    run(postgres, instance)
    run(postgres, instance)
    assert run(postgres, instance, fail=False).success
    assert evaluate(postgres, instance, run(postgres, instance)) is None
    assert evaluate(postgres, instance, run(postgres, instance)) is None
    assert incidents(postgres) == []
    assert evaluate(postgres, instance, run(postgres, instance)) is not None
    assert len(incidents(postgres)) == 1


def test_runs_refused_by_a_control_are_not_failures(postgres, instance):
    run(postgres, instance)
    run(postgres, instance)
    with postgres.begin() as conn:
        set_controls(conn, "test", kill_switch=True)
    refused = run(postgres, instance)
    assert not refused.success
    assert evaluate(postgres, instance, refused) is None
    with postgres.begin() as conn:
        set_controls(conn, "test", kill_switch=False)
    assert incidents(postgres) == []
    assert evaluate(postgres, instance, run(postgres, instance)) is not None  # fail, fail, (refused), fail
    assert len(incidents(postgres)) == 1
