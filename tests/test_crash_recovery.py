"""A run that dies frees what it held and its work is redone: real run workers killed with SIGKILL.

The instance is dagster.yaml's (Postgres storage, the `warehouse` pool limited to 1, run retries,
run monitoring) with shorter monitoring intervals, on the test's embedded Postgres. Runs are launched
with `dagster job launch` and executed by a real `dagster-daemon run` (queue, run retries, slot
release) through the DefaultRunLauncher, as under `ops up`.
"""

import itertools
import json
import os
import signal
import subprocess
import sys
import uuid
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import yaml
from helpers import wait_for

from ops_platform.resources.warehouse import WAREHOUSE_POOL
from ops_platform.sensors.dead_run_workers import dead_run_workers, process_running, worker_pid

ROOT = Path(__file__).parent.parent
TESTS = Path(__file__).parent
_ids = itertools.count(1)
FAST_MONITORING = {"poll_interval_seconds": 1, "free_slots_after_run_end_seconds": 1}


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


@pytest.fixture
def daemon(dagster_home):
    home, env, _ = dagster_home
    process = subprocess.Popen([str(Path(sys.executable).parent / "dagster-daemon"), "run", "-w",
                                str(home / "workspace.yaml")], env=env, cwd=home, start_new_session=True,
                               stdout=subprocess.DEVNULL, stderr=(home / "daemon.log").open("w"))
    yield process
    os.killpg(process.pid, signal.SIGKILL)  # the daemon, its code server and any run worker left
    process.wait(timeout=30)


def launch(env, home, run_id: str, config: dict) -> subprocess.Popen:
    return subprocess.Popen([sys.executable, "-m", "dagster", "job", "launch", "-w", str(home / "workspace.yaml"),
                             "-j", "pooled_job", "--run-id", run_id, "--config-json", json.dumps(config)],
                            env=env, cwd=home, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)


def slot_holders(instance) -> set[str]:
    return {slot.run_id for slot in instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots}


def status(instance, run_id):
    run = instance.get_run_by_id(run_id)
    return run.status if run else None


def test_a_killed_run_worker_frees_its_pool_slot_and_its_run_is_retried(dagster_home, daemon, pg_server):
    home, env, database_url = dagster_home
    lock_key = 7000 + next(_ids)
    gate = psycopg.connect(database_url, autocommit=True)  # held: steps block until the test lets them go
    gate.execute("SELECT pg_advisory_lock(%s)", (lock_key,))
    config = {"ops": {"hold_warehouse_slot": {"config": {"database_url": database_url, "lock_key": lock_key}}}}
    first, queued = str(uuid.uuid4()), str(uuid.uuid4())
    with dg.DagsterInstance.from_config(str(home)) as instance:
        launcher = launch(env, home, first, config)
        assert launcher.wait(timeout=60) == 0, launcher.stderr.read()
        wait_for(lambda: first in slot_holders(instance), "the first run to take the warehouse slot", timeout=45)
        second = launch(env, home, queued, config)  # the next sync: needs the one warehouse slot
        assert second.wait(timeout=60) == 0, second.stderr.read()

        pid, _ = worker_pid(instance, first)
        os.kill(pid, signal.SIGKILL)  # mid-step, holding the slot
        wait_for(lambda: not process_running(pid, since=0), "the killed worker to be gone")
        assert status(instance, first) == dg.DagsterRunStatus.STARTED  # Dagster alone would wait 2 h

        dead_run_workers(dg.build_sensor_context(instance=instance))
        assert status(instance, first) == dg.DagsterRunStatus.FAILURE
        wait_for(lambda: first not in slot_holders(instance), "run monitoring to free the dead run's slot")
        assert instance.get_run_by_id(first).tags.get("dagster/will_retry") == "true"  # a crash, not a step failure
        retry = wait_for(lambda: instance.get_runs(dg.RunsFilter(tags={"dagster/parent_run_id": first})),
                         "the run retry", timeout=45)[0]

        gate.close()  # the steps may end now: the retry and the queued run both get the slot in turn
        for run_id in (retry.run_id, queued):
            wait_for(lambda: status(instance, run_id) == dg.DagsterRunStatus.SUCCESS, f"run {run_id} to succeed",
                     timeout=60)
        assert slot_holders(instance) == set()
