"""Stalled builds: 31 minutes is stalled, 29 is not; handled and notified once, whatever repeats."""

import dagster as dg
from helpers import HOUR_SECONDS, in_one_window, sql

from ops_platform.agent_builds.stalled_builds import STALLED_ERROR
from ops_platform.jobs.agent_builds import stalled_builds_job
from ops_platform.notifications import NotifierResource
from ops_platform.sensors.agent_builds import stalled_builds_sensor


def evaluate(postgres, instance):
    with dg.build_sensor_context(instance=instance, resources={"postgres": postgres}) as ctx:
        return stalled_builds_sensor(ctx)


def run(postgres, request, instance):
    return stalled_builds_job.execute_in_process(
        run_config=request.run_config, instance=instance,
        resources={"postgres": postgres, "notifier": NotifierResource(postgres=postgres)},
    )


def test_stalled_build_failed_logged_and_notified_once(postgres, instance):
    old, recent, done = (r[0] for r in sql(postgres, """
        INSERT INTO builds (prd_name, status, started_at) VALUES
          ('prd-old', 'running', now() - interval '31 minutes'),
          ('prd-recent', 'running', now() - interval '29 minutes'),
          ('prd-done', 'completed', now() - interval '3 hours')
        RETURNING id"""))

    first, second = in_one_window(lambda: evaluate(postgres, instance), times=2, window_seconds=HOUR_SECONDS)
    assert len(first.run_requests) == 1
    request = first.run_requests[0]
    assert request.run_config["ops"]["fail_stalled_builds"]["config"]["build_ids"] == [old]
    assert second.run_requests[0].run_key == request.run_key  # same tick twice: one run

    result = run(postgres, request, instance)
    assert result.success
    assert sql(postgres, "SELECT id, status, error FROM builds ORDER BY id") == [
        (old, "failed", STALLED_ERROR), (recent, "running", None), (done, "completed", None)]
    assert sql(postgres, "SELECT event_type, details FROM agent_activity_feed") == [("task_failed", "Build stalled: prd-old")]
    assert sql(postgres, "SELECT dedup_key, severity, status FROM notifications") == [
        (f"build_stalled:{old}", "WARN", "digest")]

    assert evaluate(postgres, instance).run_requests == []  # nothing new to do
    run(postgres, request, instance)  # a retried run (or a second daemon) changes nothing
    assert sql(postgres, "SELECT count(*) FROM notifications")[0][0] == 1
    assert sql(postgres, "SELECT count(*) FROM agent_activity_feed")[0][0] == 1


def test_no_stalled_builds_skips_with_a_reason(postgres, instance):
    sql(postgres, "INSERT INTO builds (prd_name, status, started_at) VALUES ('p', 'running', now() - interval '5 minutes')")
    result = evaluate(postgres, instance)
    assert result.run_requests == [] and result.skip_reason.skip_message == "no stalled builds"
