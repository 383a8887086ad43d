"""The retry queue of seed 003: failed work retried with backoff in Postgres, then dead-lettered and notified."""

from ops_platform.retry_queue.handlers import HANDLERS, PermanentError, TransientError, handler
from ops_platform.retry_queue.queue import backoff_seconds, enqueue, process_ready

__all__ = ["HANDLERS", "PermanentError", "TransientError", "backoff_seconds", "enqueue", "handler", "process_ready"]
