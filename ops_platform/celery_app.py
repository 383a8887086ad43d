"""The Celery app a worker runs: `celery -A ops_platform.celery_app worker --concurrency N --queues dagster`.

The same broker, backend and settings as the code location's executor (ops_platform/executor.py), read from
the same environment variables; the tasks are dagster-celery's, which run one step of a run against the
instance (Postgres) named in the task, with the code location imported on this worker.
"""

import os

from dagster_celery.make_app import make_app
from dagster_celery.tasks import create_task

from ops_platform.executor import CELERY_SETTINGS, celery_urls

_broker, _backend = celery_urls()
app = make_app({"broker": os.environ[_broker], "backend": os.environ[_backend], "config_source": CELERY_SETTINGS})
execute_plan = create_task(app)
