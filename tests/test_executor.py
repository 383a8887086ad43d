"""OPS_EXECUTOR chooses where steps execute; a missing or wrong setting stops the load naming the variable."""

import os
import subprocess
import sys

import dagster as dg
import pytest

from ops_platform.executor import chosen_executor
from ops_platform.settings import ConfigError


def test_steps_run_in_subprocesses_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("OPS_EXECUTOR", raising=False)
    assert chosen_executor() is dg.multi_or_in_process_executor  # Dagster's default, as before


@pytest.mark.parametrize("kind", ["celery", "k8s"])
def test_the_distributed_executors(monkeypatch, kind):
    monkeypatch.setenv("OPS_EXECUTOR", kind)
    monkeypatch.setenv("OPS_CELERY_BROKER_URL", "redis://:broker-password@redis:6379/0")
    assert chosen_executor().name == kind


def test_celery_without_a_broker_is_refused(monkeypatch):
    monkeypatch.setenv("OPS_EXECUTOR", "celery")
    monkeypatch.delenv("OPS_CELERY_BROKER_URL", raising=False)
    with pytest.raises(ConfigError, match="OPS_EXECUTOR=celery needs OPS_CELERY_BROKER_URL"):
        chosen_executor()


def test_an_unknown_executor_is_refused(monkeypatch):
    monkeypatch.setenv("OPS_EXECUTOR", "dask")
    with pytest.raises(ConfigError, match="OPS_EXECUTOR must be 'multiprocess', 'celery' or 'k8s', got 'dask'"):
        chosen_executor()


def test_the_code_location_runs_every_job_on_the_chosen_executor():
    """The platform's own code location, unchanged, on Celery: OPS_EXECUTOR is read when it loads."""
    script = "from ops_platform.definitions import defs; print(sorted({j.executor_def.name for j in " \
             "defs.resolve_all_job_defs()}))"
    env = {**os.environ, "OPS_EXECUTOR": "celery", "OPS_CELERY_BROKER_URL": "redis://127.0.0.1:1/0"}
    result = subprocess.run([sys.executable, "-c", script], env=env, capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "['celery']"
