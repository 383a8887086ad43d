"""Steps on Celery workers: a real Redis broker, two `celery -A ops_platform.celery_app worker` processes, one
run worker (`dagster job execute`), all on dagster.yaml's instance (Postgres storage) and one code location
(tests/celery_location.py, on the platform's executor with OPS_EXECUTOR=celery).

Redis is Debian's redis-server, which `make test` installs (scripts/install-redis.sh) when it is missing.
"""

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

import dagster as dg
import psycopg
import pytest
import redis
import yaml
from helpers import free_port, sql, wait_for

from ops_platform.resources.warehouse import WAREHOUSE_POOL

ROOT = Path(__file__).parent.parent
TESTS = Path(__file__).parent
WORKERS = ("w1@ops", "w2@ops")
SIDE_GATE, LOAD_GATE = 8101, 8102  # advisory lock keys in the test's own database


@pytest.fixture
def broker(tmp_path):
    """A Redis server on 127.0.0.1 for this test: its URL."""
    server = shutil.which("redis-server")
    assert server, "redis-server is not installed: `make test` installs it (scripts/install-redis.sh)"
    port = free_port()
    process = subprocess.Popen([server, "--port", str(port), "--bind", "127.0.0.1", "--save", "",
                                "--appendonly", "no", "--dir", str(tmp_path)],
                               stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"redis://127.0.0.1:{port}/0"
    client = redis.Redis.from_url(url)
    wait_for(lambda: _pings(client), "Redis to accept connections", timeout=10, every=0.05)
    yield url
    process.kill()
    process.wait(timeout=10)


def _pings(client) -> bool:
    try:
        return client.ping()
    except redis.ConnectionError:
        return False


@pytest.fixture
def celery_env(pg_server, postgres, broker, tmp_path, monkeypatch):
    """The environment of every process of the deployment: the same instance, broker and code location."""
    dagster_url = pg_server.create(f"dagster_celery_{os.getpid()}")
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_url)
    shutil.copy(ROOT / "dagster.yaml", tmp_path / "dagster.yaml")
    sql(postgres, "CREATE TABLE celery_writes (step text NOT NULL, pid int NOT NULL)")
    return {**os.environ, "DAGSTER_HOME": str(tmp_path), "DAGSTER_PG_URL": dagster_url,
            "OPS_EXECUTOR": "celery", "OPS_CELERY_BROKER_URL": broker,
            "PYTHONPATH": os.pathsep.join([str(TESTS), str(ROOT)])}


@pytest.fixture
def workers(celery_env, tmp_path):
    celery = str(Path(sys.executable).with_name("celery"))
    processes = [subprocess.Popen([celery, "-A", "ops_platform.celery_app", "worker", "--concurrency", "1",
                                   "--queues", "dagster", "--hostname", name, "--without-gossip", "--without-mingle",
                                   "--loglevel", "INFO"], env=celery_env, cwd=tmp_path, start_new_session=True,
                                  stdout=subprocess.DEVNULL, stderr=(tmp_path / f"{name}.log").open("w"))
                 for name in WORKERS]
    yield processes
    for process in processes:
        os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=30)


def running(process: subprocess.Popen) -> bool:
    """True while `process` runs; its errors when it has ended."""
    if process.poll() is not None:
        pytest.fail(f"the run worker ended early:\n{process.stderr.read()}")
    return True


def waiting_steps(postgres) -> dict[str, int]:
    """{step: pid} of the steps waiting at a gate right now, from their connections' application_name."""
    rows = sql(postgres, "SELECT application_name FROM pg_stat_activity WHERE datname = current_database()"
                         " AND wait_event = 'advisory' AND application_name LIKE '%:%'")
    return {name.split(":")[0]: int(name.split(":")[1]) for (name,) in rows}


def engine_events(instance, run_id: str, message: str) -> list:
    records = instance.get_records_for_run(run_id, of_type=dg.DagsterEventType.ENGINE_EVENT).records
    return [r.event_log_entry for r in records if message in r.event_log_entry.dagster_event.message]


def executed_on(instance, run_id: str) -> list[tuple[str, str]]:
    """(step, Celery worker) of every time a worker began executing a step, in order."""
    return [(entry.step_key, entry.dagster_event.engine_event_data.metadata["Celery worker"].value)
            for entry in engine_events(instance, run_id, "Executing steps")]


def step_times(instance, run_id: str, step: str) -> tuple[float, float]:
    """(last start, success) timestamps of `step`."""
    starts, ends = ([r.event_log_entry.timestamp for r in instance.get_records_for_run(run_id, of_type=kind).records
                     if r.event_log_entry.step_key == step]
                    for kind in (dg.DagsterEventType.STEP_START, dg.DagsterEventType.STEP_SUCCESS))
    return starts[-1], ends[-1]


def held_back(instance) -> list[str]:
    """Steps waiting for a `warehouse` slot (Dagster's pool records: pending, no slot assigned)."""
    info = instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL)
    return [step.step_key for step in info.pending_steps if step.assigned_timestamp is None]


def claimed_slots(instance) -> list[str]:
    return [slot.step_key for slot in instance.event_log_storage.get_concurrency_info(WAREHOUSE_POOL).claimed_slots]


def test_steps_run_on_two_workers_hold_the_warehouse_pool_and_a_killed_step_is_run_again_once(
        celery_env, workers, postgres, database_url, tmp_path):
    gates = psycopg.connect(database_url, autocommit=True)
    for gate in (SIDE_GATE, LOAD_GATE):
        gates.execute("SELECT pg_advisory_lock(%s)", (gate,))
    config = {"ops": {step: {"config": {"database_url": database_url, "gate": gate}} for step, gate in (
        ("side_a", SIDE_GATE), ("side_b", SIDE_GATE), ("load_a", LOAD_GATE), ("load_b", LOAD_GATE))}}
    (tmp_path / "run.yaml").write_text(yaml.safe_dump(config))
    run_worker = subprocess.Popen([sys.executable, "-m", "dagster", "job", "execute", "-m", "celery_location",
                                   "-j", "celery_job", "-c", str(tmp_path / "run.yaml")], env=celery_env,
                                  cwd=tmp_path, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    with dg.DagsterInstance.from_config(str(tmp_path)) as instance:
        try:
            # The two side steps wait at their gate at the same time: one on each worker (concurrency 1 each).
            wait_for(lambda: running(run_worker) and {"side_a", "side_b"} <= waiting_steps(postgres).keys(),
                     "both side steps to start", timeout=120)
            [run] = instance.get_runs()
            assert sorted(worker for _, worker in executed_on(instance, run.run_id)) == sorted(WORKERS)
            gates.execute("SELECT pg_advisory_unlock(%s)", (SIDE_GATE,))

            # Both warehouse steps are ready and a worker is idle, but the pool (limit 1) lets one run.
            [second] = wait_for(lambda: held_back(instance), "a warehouse step to be held back by the pool")
            [(first, killed)] = wait_for(lambda: list(waiting_steps(postgres).items()), "a warehouse step to start")
            assert first != second and claimed_slots(instance) == [first]

            os.kill(killed, signal.SIGKILL)  # the process running the step dies mid-step
            retried = wait_for(lambda: waiting_steps(postgres).get(first) not in (None, killed),
                               "the killed step to run again in a new process", timeout=120)
            assert retried and waiting_steps(postgres).keys() == {first}  # the other one still waits for the pool
            assert claimed_slots(instance) == [first] and held_back(instance) == [second]
            gates.execute("SELECT pg_advisory_unlock(%s)", (LOAD_GATE,))
            assert run_worker.wait(timeout=60) == 0, run_worker.stderr.read()
        finally:
            run_worker.kill()
            gates.close()

        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.SUCCESS
        steps = [step for step, _ in executed_on(instance, run.run_id)]
        assert sorted(steps) == sorted(["side_a", "side_b", "load_a", "load_b", first])  # the killed one twice
        first_ended = step_times(instance, run.run_id, first)[1]
        assert first_ended <= step_times(instance, run.run_id, second)[0]  # the pool: one after the other
        assert claimed_slots(instance) == []
    writes = sql(postgres, "SELECT step, pid FROM celery_writes ORDER BY step")
    assert [step for step, _ in writes] == ["load_a", "load_b", "side_a", "side_b"]  # none lost, none twice
    assert dict(writes)[first] != killed
