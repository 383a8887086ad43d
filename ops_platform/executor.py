"""Where a run's steps execute, chosen by OPS_EXECUTOR without changing the code location.

- `multiprocess` (default): each step in a subprocess of the run worker (`ops up`, one machine); Dagster's
  default executor, which a run may still switch to in-process through its run config.
- `celery`: each step is a Celery task on a broker (OPS_CELERY_BROKER_URL, e.g. redis://host:6379/0),
  executed by `celery -A ops_platform.celery_app worker` processes on any machine that has the code
  location and reaches the same Postgres. Results travel back through OPS_CELERY_BACKEND_URL (default:
  the broker).
- `k8s`: each step in its own Kubernetes Job (dagster-k8s' k8s_job_executor), under the K8sRunLauncher.

Concurrency pools (the `warehouse` pool) hold under all three: the run worker claims a pool slot before it
hands a step to a subprocess, a Celery worker or a pod, and frees it when the step's result comes back.
"""

from __future__ import annotations

import dagster as dg

from ops_platform.settings import ConfigError, Settings

EXECUTOR_VAR = "OPS_EXECUTOR"
BROKER_VAR = "OPS_CELERY_BROKER_URL"
BACKEND_VAR = "OPS_CELERY_BACKEND_URL"

# A step's task is acknowledged only once the step has ended, and handed back to the broker when the process
# running it dies (OOM kill, kill -9): another worker runs the step again, and the run goes on. With Redis a
# worker that vanishes whole (its machine lost) leaves its task unacknowledged until visibility_timeout has
# passed; it must exceed the longest step, or a step still running is handed out twice: 2 h 5 min, past
# dagster.yaml's max_runtime_seconds (7200) after which run monitoring ends the run anyway.
CELERY_SETTINGS = {
    "task_acks_late": True,
    "task_reject_on_worker_lost": True,
    "worker_prefetch_multiplier": 1,  # a worker takes a step when it can start it, not before
    "broker_transport_options": {"visibility_timeout": 7500},
}


def celery_urls(settings: Settings) -> tuple[str, str]:
    """(broker, result backend) environment variable names: the backend falls back to the broker's."""
    if settings.celery_broker_url is None:
        raise ConfigError(f"{EXECUTOR_VAR}=celery needs {BROKER_VAR}, e.g. redis://redis:6379/0")
    return BROKER_VAR, BACKEND_VAR if settings.celery_backend_url else BROKER_VAR


def chosen_executor(settings: Settings | None = None) -> dg.ExecutorDefinition:
    """The executor OPS_EXECUTOR names (settings as loaded by the code location; read now when not given).
    Broker URLs reach the run config as EnvVar names, never as values (they may hold a password). Raises
    ConfigError naming the variable when a setting is missing or wrong."""
    settings = settings or Settings.load()
    if settings.executor == "celery":
        from dagster_celery import celery_executor

        broker, backend = celery_urls(settings)
        return celery_executor.configured({"broker": {"env": broker}, "backend": {"env": backend},
                                           "config_source": CELERY_SETTINGS}, name="celery")
    if settings.executor == "k8s":
        from dagster_k8s import k8s_job_executor

        return k8s_job_executor
    return dg.multi_or_in_process_executor
