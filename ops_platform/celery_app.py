"""The Celery app a worker runs: `celery -A ops_platform.celery_app worker --concurrency N --queues dagster`.

The same broker, backend and settings as the code location's executor (ops_platform/executor.py), read from
the same environment variables; the tasks are dagster-celery's, which run one step of a run against the
instance (Postgres) named in the task, with the code location imported on this worker.
"""

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from ops_platform.executor import CELERY_SETTINGS, celery_urls
from ops_platform.settings import current

_settings = current()
celery_urls(_settings)  # a worker without a broker stops here, naming the variable
_broker = _settings.celery_broker_url.get_secret_value()
_backend = _settings.celery_backend_url.get_secret_value() if _settings.celery_backend_url else _broker
app = make_app({"broker": _broker, "backend": _backend, "config_source": CELERY_SETTINGS})
execute_plan = create_task(app)
