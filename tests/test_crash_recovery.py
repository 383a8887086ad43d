"""A run that dies frees what it held and its work is redone: real processes killed with SIGKILL.

The instance is dagster.yaml's (Postgres storage, the `warehouse` pool limited to 1, run retries,
run monitoring) with shorter monitoring intervals and cancel timeout, on the test's embedded Postgres.
Runs are launched with `dagster job launch` and executed by a real `dagster-daemon run` (queue, run
retries, slot release) through the DefaultRunLauncher, as under `ops up`; "the platform" killed is
that daemon with its code server and run workers. The dead_run_workers sensor is evaluated by the
test (its 30 s interval is too long to wait for), everything else by the daemon.
"""

import itertools
import json
import os
import signal
import subprocess
import sys
import threading
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml
from crash_location import pooled_job
from helpers import Receiver, in_one_window, sql, wait_for

from ops_platform.framework.run_keys import run_key
from ops_platform.jobs.events import events_job
from ops_platform.notifications import NotifierResource
from ops_platform.resources.warehouse import WAREHOUSE_POOL
from ops_platform.runs.workers import process_running, worker_pid
from ops_platform.sensors.events import events_outbox_sensor
from ops_platform.sensors.runs import audit_run_failure, audit_run_success, dead_run_workers, job_failure_streaks

ROOT = Path(__file__).parent.parent
TESTS = Path(__file__).parent
_ids = itertools.count(1)
FAST_MONITORING = {"poll_interval_seconds": 1, "free_slots_after_run_end_seconds": 1, "cancel_timeout_seconds": 2}


@pytest.fixture
def dagster_home(pg_server, tmp_path, monkeypatch):
    """A DAGSTER_HOME with dagster.yaml on a fresh `dagster` database; (home, environment for the CLIs, its URL)."""
    database_url = pg_server.create(f"dagster_crash_{os.getpid()}_{next(_ids)}")
    monkeypatch.setenv("DAGSTER_PG_URL", database_url)
    settings = yaml.safe_load((ROOT / "dagster.yaml").read_text())
    settings["run_monitoring"] |= FAST_MONITORING
    (tmp_path / "dagster.yaml").write_text(yaml.safe_dump(settings))
    (tmp_path / "workspace.yaml").write_text(yaml.safe_dump({"load_from": [{"python_module": {
        "module_name": "crash_location", "working_directory": str(TESTS)}}]}))
    env = {**os.environ, "DAGSTER_HOME": str(tmp_path), "DAGSTER_PG_URL": database_url,
           "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}
    return tmp_path, env, database_url


class Platform:
    """A real `dagster-daemon run` in its own session: with it, its code server and the run workers it
    launched, so kill() is kill -9 of the running platform, and start() is `ops up` again."""

    def __init__(self, home: Path, env: dict):
        self.home, self.env, self.process = home, env, None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w", str(self.home / "workspace.yaml")],
            env=self.env, cwd=self.home, start_new_session=True, stdout=subprocess.DEVNULL,
            stderr=(self.home / "daemon.log").open("a"))

    def kill(self) -> None:
        os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def platform(dagster_home):
    home, env, _ = dagster_home
    running = Platform(home, env)
    running.start()
    yield running
    running.kill()


def launch(env, home, run_id: str, config: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dagster", "job", "launch", "-w", str(home / "workspace.yaml"),
                             "-j", "pooled_job", "--run-id", run_id, "--config-json", json.dumps(config)],
                            env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def slot_holders(instance) -> set[str]:
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots}


def status(instance, run_id):
    run = instance.get_run_by_id(run_id)
    return run.status if run else None


def hold_the_gate(database_url) -> tuple[psycopg.Connection, dict]:
    """(a connection holding the advisory lock the steps wait on, the run config of such a step)."""
    lock_key = 7000 + next(_ids)
    gate = psycopg.connect(database_url, autocommit=True)
    gate.execute("SELECT pg_advisory_lock(%s)", (lock_key,))
    return gate, {"ops": {"hold_warehouse_slot": {"config": {"database_url": database_url, "lock_key": lock_key}}}}


def launch_runs(instance, env, home, config, count: int) -> tuple[str, set[str]]:
    """Launch `count` runs that need the one warehouse slot (say a sync and a backfill) and wait until all
    are STARTED: (the run in its step holding the slot, the others, waiting for it in their workers)."""
    runs = {str(uuid.uuid4()) for _ in range(count)}
    for launcher in [launch(env, home, run_id, config) for run_id in runs]:
        assert launcher.wait(timeout=60) == 0, launcher.stderr.read()
    [holder] = wait_for(lambda: slot_holders(instance) & runs, "a run to take the warehouse slot", timeout=45)
    wait_for(lambda: all(status(instance, r) == dg.DagsterRunStatus.STARTED for r in runs), "every run to start",
             timeout=90)  # run workers start slowly on a loaded 2-core machine
    return holder, runs - {holder}


def kill_the_platform(platform, instance, runs) -> None:
    """kill -9 the daemon, its code server and the run workers mid-step; start the platform again."""
    workers = [worker_pid(instance, run_id) for run_id in runs]  # (pid, when it said so)
    assert all(process_running(*worker) for worker in workers)
    platform.kill()  # SIGKILL is delivered asynchronously: a worker may take a moment to be gone
    wait_for(lambda: not any(process_running(*worker) for worker in workers), "the killed run workers to be gone",
             timeout=10)
    platform.start()
    assert {status(instance, r) for r in runs} == {dg.DagsterRunStatus.STARTED}  # nothing behind them


def test_runs_killed_with_the_platform_are_failed_free_the_pool_slot_and_are_retried(dagster_home, platform):
    home, env, database_url = dagster_home
    gate, config = hold_the_gate(database_url)  # steps block until the test lets them go
    with dg.DagsterInstance.from_config(str(home)) as instance:
        holder, waiting = launch_runs(instance, env, home, config, 2)
        runs = {holder, *waiting}
        kill_the_platform(platform, instance, runs)
        assert slot_holders(instance) == {holder}  # a dead run's slot: every later warehouse run would wait

        dead_run_workers(dg.build_sensor_context(instance=instance))
        assert {status(instance, r) for r in runs} == {dg.DagsterRunStatus.FAILURE}
        wait_for(lambda: not slot_holders(instance) & runs, "run monitoring to free the dead run's slot")
        assert {instance.get_run_by_id(r).tags.get("dagster/will_retry") for r in runs} == {"true"}  # crashes
        retries = wait_for(lambda: (found := [run.run_id for r in runs for run in instance.get_runs(
            dg.RunsFilter(tags={"dagster/parent_run_id": r}))]) and len(found) == 2 and found, "the run retries",
                           timeout=45)

        gate.close()  # the steps may end now: the retries get the slot in turn
        for run_id in retries:
            wait_for(lambda: status(instance, run_id) == dg.DagsterRunStatus.SUCCESS, f"run {run_id} to succeed",
                     timeout=60)
        assert slot_holders(instance) == set()


def test_a_dead_run_canceled_by_hand_frees_its_pool_slot(dagster_home, platform):
    home, env, database_url = dagster_home
    gate, config = hold_the_gate(database_url)
    with dg.DagsterInstance.from_config(str(home)) as instance:
        holder, _ = launch_runs(instance, env, home, config, 1)
        kill_the_platform(platform, instance, {holder})
        with pytest.raises(dg.DagsterError, match="Could not reach user code server"):
            instance.run_coordinator.cancel_run(holder)  # the UI's Terminate: the server that ran it is gone
        assert status(instance, holder) == dg.DagsterRunStatus.CANCELING
        wait_for(lambda: status(instance, holder) == dg.DagsterRunStatus.CANCELED, "cancel_timeout_seconds to pass")
        wait_for(lambda: slot_holders(instance) == set(), "run monitoring to free the canceled run's slot")
    gate.close()


EVENTS_WORKER = """
import json, sys
import dagster as dg
from ops_platform.jobs.events import events_job
from ops_platform.notifications import NotifierResource
from ops_platform.resources.postgres import PostgresResource
postgres = PostgresResource(url=sys.argv[1])
with dg.DagsterInstance.get() as instance:
    events_job.execute_in_process(run_config=json.loads(sys.argv[2]), tags=json.loads(sys.argv[3]), instance=instance,
                                  resources={"postgres": postgres, "notifier": NotifierResource(postgres=postgres)})
"""


@dataclass
class HoldingReceiver(Receiver):
    """A webhook consumer that stops answering from its `hold_from`-th request until `release` is set."""

    hold_from: int = 3
    release: threading.Event = field(default_factory=threading.Event)
    arrived: int = 0

    def respond(self, handler, body):
        self.arrived += 1
        if self.arrived >= self.hold_from:
            self.release.wait(timeout=60)
        super().respond(handler, body)

    def before_shutdown(self):
        self.release.set()


def events_tick(instance, postgres, cursor):
    with dg.build_sensor_context(instance=instance, cursor=cursor, resources={"postgres": postgres}) as context:
        return events_outbox_sensor(context)


def test_events_of_a_killed_run_are_redone_at_the_next_tick_and_delivered(dagster_home, postgres):
    home, env, _ = dagster_home
    secret = "webhook-row-secret-crash"
    with HoldingReceiver(secret) as receiver, dg.DagsterInstance.from_config(str(home)) as instance:
        hook = sql(postgres, "INSERT INTO webhooks (url, secret) VALUES (:u, :s) RETURNING id",
                   u=receiver.url, s=secret)[0][0]
        events = [sql(postgres, "INSERT INTO events_outbox (name, payload) VALUES ('webhook/send', CAST(:p AS jsonb))"
                      " RETURNING id", p=json.dumps({"webhook_id": hook, "event": "e", "data": {"n": n}}))[0][0]
                  for n in range(5)]
        tick = events_tick(instance, postgres, None)
        [request] = tick.run_requests
        worker = subprocess.Popen([sys.executable, "-c", EVENTS_WORKER, postgres.url, json.dumps(request.run_config),
                                   json.dumps({"dagster/run_key": request.run_key})], env=env,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        try:
            wait_for(lambda: receiver.arrived == 3, "two events delivered, the third one in flight", timeout=45)
            assert sql(postgres, "SELECT count(*) FROM events_handled")[0][0] == 2
            [run] = instance.get_runs(dg.RunsFilter(job_name=events_job.name))
            assert events_tick(instance, postgres, tick.cursor).run_requests == []  # its run holds them: no redo
        finally:
            worker.kill()  # SIGKILL mid-delivery
            worker.wait(timeout=30)
        dead_run_workers(dg.build_sensor_context(instance=instance))
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.FAILURE
        receiver.release.set()

        # The cursor is long past these events: they come back as a redo.
        redo, key = in_one_window(lambda: events_tick(instance, postgres, tick.cursor),
                                  lambda: run_key("events_redo", map(str, events[2:])))
        assert [r.run_key for r in redo.run_requests] == [key]
        assert redo.run_requests[0].run_config["ops"]["handle_events"]["config"]["event_ids"] == events[2:]
        result = events_job.execute_in_process(run_config=redo.run_requests[0].run_config, instance=instance,
                                               resources={"postgres": postgres, "notifier": NotifierResource(
                                                   postgres=postgres)})
        assert result.success
        assert events_tick(instance, postgres, redo.cursor).run_requests == []  # nothing left to redo
    assert sql(postgres, "SELECT event_id, outcome FROM events_handled ORDER BY event_id") == [
        (e, "delivered") for e in events]
    received = sorted(r.json["data"]["n"] for r in receiver.requests)
    assert received == [0, 1, 2, 2, 3, 4]  # the POST in flight when the worker died was sent again, as it must


def status_sensor(sensor, instance, postgres, run_id, event_type):
    """Evaluate a run-status sensor on the run's `event_type` event, as the daemon does when it reads it."""
    event = instance.get_records_for_run(run_id, of_type=event_type).records[0].event_log_entry.dagster_event
    context = dg.build_run_status_sensor_context(sensor_name=sensor.name, dagster_instance=instance,
                                                 dagster_run=instance.get_run_by_id(run_id), dagster_event=event,
                                                 resources={"postgres": postgres})
    return sensor(context.for_run_failure() if event_type == dg.DagsterEventType.RUN_FAILURE else context)


def test_a_run_failed_by_a_duplicate_worker_then_finished_is_audited_as_its_success(dagster_home, postgres):
    home, env, database_url = dagster_home
    gate, config = hold_the_gate(database_url)
    failing = {"ops": {"hold_warehouse_slot": {"config": {"database_url": database_url, "lock_key": 1, "fail": True}}}}
    failure, success = dg.DagsterEventType.RUN_FAILURE, dg.DagsterEventType.RUN_SUCCESS
    with dg.DagsterInstance.from_config(str(home)) as instance:
        for _ in range(2):  # two failed runs before: one more failure would be a streak of 3
            pooled_job.execute_in_process(run_config=failing, instance=instance, raise_on_error=False)
        (home / "run.yaml").write_text(yaml.safe_dump(config))
        worker = subprocess.Popen([sys.executable, "-m", "dagster", "job", "execute", "-m", "crash_location", "-j",
                                   "pooled_job", "-c", str(home / "run.yaml"),
                                   "--tags", json.dumps({"dagster/max_retries": "0"})],
                                  env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
        [run] = wait_for(lambda: worker.poll() is None and instance.get_runs(
            dg.RunsFilter(statuses=[dg.DagsterRunStatus.STARTED])) or worker.poll() is not None and pytest.fail(
            worker.stderr.read()), "the real worker to start", timeout=45)
        wait_for(lambda: run.run_id in slot_holders(instance), "the real worker to be in its step")
        # What a duplicate run worker does when it finds the run already STARTED (and run monitoring off):
        instance.report_run_failed(run, f"pooled_job ({run.run_id}) started a new run worker while the run was "
                                        "already in state STARTED. Marking the run as failed.")
        status_sensor(audit_run_failure, instance, postgres, run.run_id, failure)  # the daemon sees the failure
        assert sql(postgres, "SELECT success FROM audit_log WHERE run_id = :r", r=run.run_id) == [(False,)]
        assert sql(postgres, "SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL")[0][0] == 1

        gate.close()  # the real worker finishes its step
        assert worker.wait(timeout=60) == 0, worker.stderr.read()
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.SUCCESS  # Dagster's final record
        status_sensor(audit_run_success, instance, postgres, run.run_id, success)
        status_sensor(audit_run_failure, instance, postgres, run.run_id, failure)  # a failure tick read late
        assert status_sensor(job_failure_streaks, instance, postgres, run.run_id, failure) is None

        later = pooled_job.execute_in_process(run_config=failing, instance=instance, raise_on_error=False)
        assert status_sensor(job_failure_streaks, instance, postgres, later.run_id, failure) is None  # the success broke it
    assert sql(postgres, "SELECT success, error FROM audit_log WHERE run_id = :r", r=run.run_id) == [(True, None)]
    assert sql(postgres, "SELECT count(*) FROM dead_letters WHERE resolved_at IS NULL")[0][0] == 0
    assert sql(postgres, "SELECT count(*) FROM incidents")[0][0] == 0
