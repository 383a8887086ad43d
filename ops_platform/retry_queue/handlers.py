"""What a retry job does: a registry of job_name → handler(payload, resources).

A handler returns to succeed and raises to fail. `PermanentError` means another attempt cannot
help (an unknown job name, a bad payload, a request the other side rejected): the job is dead at
once. Any other exception is transient (network, 5xx, 429, timeouts) and retried with backoff.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import dagster as dg
import httpx
from sqlalchemy import text

from ops_platform.framework.controls import COMMS, KILL_SWITCH, read_controls
from ops_platform.notifications.channels import NOT_RETRIED, DeliveryError, retryable_status
from ops_platform.notifications.http import wait_hint
from ops_platform.notifications.message import Notification, Severity
from ops_platform.resources.postgres import PostgresResource
from ops_platform.settings import ConfigError

if TYPE_CHECKING:
    from ops_platform.notifications.resource import NotifierResource

HTTP_METHODS = ("GET", "POST", "PUT", "PATCH", "DELETE", "HEAD")


class PermanentError(RuntimeError):
    """Retrying cannot help: the job goes to the dead letters now, not after 5 attempts."""


class TransientError(RuntimeError):
    """Worth another attempt later: after the queue's backoff, and not before `retry_at` (UTC) when the
    other side named a time (its wait hint)."""

    def __init__(self, message: str, retry_at: datetime | None = None):
        super().__init__(message)
        self.retry_at = retry_at


class Deferred(RuntimeError):
    """Not now, and not a failure (a control says wait): the job waits without using an attempt."""

    DELAY_SECONDS = 300


@dataclass(frozen=True)
class HandlerResources:
    postgres: PostgresResource
    notifier: NotifierResource
    http_timeout_seconds: float = 10.0


Handler = Callable[[dict[str, Any], HandlerResources], None]
HANDLERS: dict[str, Handler] = {}


def handler(job_name: str) -> Callable[[Handler], Handler]:
    def register(fn: Handler) -> Handler:
        if job_name in HANDLERS:
            raise ValueError(f"a retry handler for {job_name!r} is already registered")
        HANDLERS[job_name] = fn
        return fn

    return register


def handler_for(job_name: str) -> Handler:
    try:
        return HANDLERS[job_name]
    except KeyError:
        raise PermanentError(f"no handler for job {job_name!r} (known: {', '.join(sorted(HANDLERS))})") from None


def _field(payload: dict[str, Any], name: str, kind: type) -> Any:
    value = payload.get(name)
    if not isinstance(value, kind) or isinstance(value, bool):
        raise PermanentError(f"payload field {name!r} must be a {kind.__name__}, got {value!r}")
    return value


@handler("notification.redeliver")
def redeliver_notification(payload: dict[str, Any], resources: HandlerResources) -> None:
    """Deliver a failed notification again through one channel; 'sent' once no channel is left to retry.

    Already 'sent' means an earlier attempt delivered it and crashed before recording that: done.
    """
    notification_id, channel = _field(payload, "notification_id", int), _field(payload, "channel", str)
    with resources.postgres.begin() as conn:
        row = conn.execute(text(
            "SELECT type, severity, title, body, dedup_key, meta, recipients, status FROM notifications"
            " WHERE id = :id FOR UPDATE"), {"id": notification_id}).first()
        if row is None:
            raise PermanentError(f"notification {notification_id} does not exist")
        if row.status == "sent":
            return
        if row.status != "failed":
            raise PermanentError(f"notification {notification_id} is {row.status!r}, not 'failed': not redelivered")
        blocked = read_controls(conn).blocked_by((KILL_SWITCH, COMMS))
        if blocked:  # wait for the control to be lifted; the message is not lost and no attempt is spent
            raise Deferred(f"notification {notification_id} waits: {blocked}")
        message = Notification(type=row.type, severity=Severity(row.severity), title=row.title, body=row.body,
                               dedup_key=row.dedup_key, meta=row.meta, recipients=tuple(row.recipients))
        try:
            transport = resources.notifier.channel(channel)
        except ConfigError as err:
            raise PermanentError(str(err)) from None
        try:
            transport.deliver(notification_id, message.payload(notification_id), conn)
        except DeliveryError as err:
            if NOT_RETRIED in str(err):
                raise PermanentError(str(err)) from None
            raise TransientError(str(err), err.retry_at) from None
        finally:
            close = getattr(transport, "close", None)
            if close:
                close()
        # Another channel of the same message still waiting in the queue keeps it 'failed'.
        conn.execute(text(
            "UPDATE notifications SET reason = concat_ws('; ', reason, CAST(:note AS text)),"
            " status = CASE WHEN other.waiting THEN status ELSE 'sent' END,"
            " sent_at = CASE WHEN other.waiting THEN sent_at ELSE now() END"
            " FROM (SELECT EXISTS (SELECT 1 FROM retry_jobs WHERE job_name = 'notification.redeliver'"
            "   AND dedup_key LIKE :prefix AND dedup_key <> :mine AND status <> 'completed') AS waiting) AS other"
            " WHERE id = :id"),
            {"id": notification_id, "note": f"{channel}: redelivered by the retry queue",
             "prefix": f"notification:{notification_id}:%", "mine": f"notification:{notification_id}:{channel}"})


@handler("http.request")
def http_request(payload: dict[str, Any], resources: HandlerResources) -> None:
    """A generic outbound call: 2xx succeeds; 5xx, 408, 425, 429 and network errors are retried (not before
    the wait the server asked for, `http.wait_hint`); any other status is final. Errors name the URL without query or credentials."""
    method = _field(payload, "method", str).upper()
    if method not in HTTP_METHODS:
        raise PermanentError(f"payload field 'method' must be one of {', '.join(HTTP_METHODS)}, got {method!r}")
    try:
        url = httpx.URL(_field(payload, "url", str))
    except httpx.InvalidURL as err:
        raise PermanentError(f"payload field 'url' is not a URL: {err}") from None
    if url.scheme not in ("http", "https") or not url.host:
        raise PermanentError("payload field 'url' must be an absolute http(s) URL")
    headers = payload.get("headers") or {}
    if not isinstance(headers, dict) or not all(isinstance(v, str) for v in headers.values()):
        raise PermanentError("payload field 'headers' must map names to strings")
    where = f"{method} {url.scheme}://{url.host}{f':{url.port}' if url.port else ''}{url.path}"
    try:
        response = httpx.request(method, url, json=payload.get("json"), headers=headers,
                                 timeout=resources.http_timeout_seconds)
    except httpx.TransportError as err:
        raise TransientError(f"{where}: {type(err).__name__}") from None
    status = response.status_code
    if 200 <= status < 300:
        return
    if retryable_status(status):
        hint = wait_hint(response)
        raise TransientError(f"{where}: HTTP {status}", datetime.now(UTC) + timedelta(seconds=hint) if hint else None)
    raise PermanentError(f"{where}: HTTP {status} {NOT_RETRIED}")


RERUN = "job.rerun"
RETRY_JOB_TAG = "ops/retry_job"  # a run the queue launched: its failure is the queue's attempt


def job_named(name: str) -> dg.JobDefinition:
    """The code location's job `name` (what a rerun reconstructs in its run's processes)."""
    from ops_platform.definitions import defs  # here: the definitions import the sensors that import this module

    return defs.resolve_job_def(name)


@handler(RERUN)
def rerun_job(payload: dict[str, Any], resources: HandlerResources) -> None:
    """Seed 003 executeJob: run the failed run's job again, by name, with its config (retry_queue/reruns.py)."""
    name = payload.get("job_name")
    if not isinstance(name, str):
        raise PermanentError("a job.rerun payload needs job_name")
    try:
        job_named(name)
    except Exception as err:  # noqa: BLE001 - any lookup failure: the job is gone
        raise PermanentError(f"no job {name!r} in the code location: {err}") from None
    recon = dg.build_reconstructable_job(__name__, "job_named", reconstructable_args=(name,))
    tags = {RETRY_JOB_TAG: str(payload.get("run_id")), "ops/rerun_of": str(payload.get("run_id"))}
    with dg.execute_job(recon, instance=dg.DagsterInstance.get(), run_config=payload.get("run_config") or {},
                        tags=tags, raise_on_error=False) as result:
        if not result.success:
            raise TransientError(f"{name} failed again (run {result.run_id})")
