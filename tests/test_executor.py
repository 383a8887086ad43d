"""OPS_EXECUTOR chooses where steps execute; a missing or wrong setting stops the load naming the variable."""

import dagster as dg
import pytest

from ops_platform.executor import executor_from_env
from ops_platform.settings import ConfigError


def test_steps_run_in_subprocesses_unless_told_otherwise(monkeypatch):
    monkeypatch.delenv("OPS_EXECUTOR", raising=False)
    assert executor_from_env() is dg.multiprocess_executor


@pytest.mark.parametrize("kind", ["celery", "k8s"])
def test_the_distributed_executors(monkeypatch, kind):
    monkeypatch.setenv("OPS_EXECUTOR", kind)
    monkeypatch.setenv("OPS_CELERY_BROKER_URL", "redis://:broker-password@redis:6379/0")
    assert executor_from_env().name == kind


def test_celery_without_a_broker_is_refused(monkeypatch):
    monkeypatch.setenv("OPS_EXECUTOR", "celery")
    monkeypatch.delenv("OPS_CELERY_BROKER_URL", raising=False)
    with pytest.raises(ConfigError, match="OPS_EXECUTOR=celery needs OPS_CELERY_BROKER_URL"):
        executor_from_env()


def test_an_unknown_executor_is_refused(monkeypatch):
    monkeypatch.setenv("OPS_EXECUTOR", "dask")
    with pytest.raises(ConfigError, match="OPS_EXECUTOR must be one of multiprocess, celery, k8s, got 'dask'"):
        executor_from_env()
