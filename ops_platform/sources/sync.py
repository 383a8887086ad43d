"""One sync of one source, and its bookkeeping in `data_source_sync` (seed 003).

A sync run: skip with the reason when the source is not configured (not a failure); else mark it started,
fetch and store everything changed since the source's watermark, and record the outcome. A failure is
recorded (last_error, consecutive_failures) and alerted by category:
- auth: an incident `source_auth:<source>` (WARN) at once: retrying cannot fix a refused credential;
- unreachable: `source_unreachable:<source>` (WARN) when it is the 3rd run in a row that could not reach it.
Incidents are deduplicated per source and hour (monitoring/incidents.py) and sent through the notifier.
Each source's sync is independent: one failing never stops another (the periodic scan runs each in its own op).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import ClassVar

import dagster as dg
from sqlalchemy import text

from ops_platform.framework.audit import record
from ops_platform.monitoring.incidents import Incident, open_incidents, unsent_notifications
from ops_platform.notifications import NotifierResource, Severity
from ops_platform.outbound.retry import RetryRule
from ops_platform.resources.postgres import PostgresResource
from ops_platform.framework.error_categories import AUTH
from ops_platform.sources.client import SourceFailed

UNREACHABLE_RUNS = 3  # seed 003: "Alert if ... API unreachable for 3+ consecutive runs"

START_SQL = text("""
INSERT INTO data_source_sync (source_name, last_sync_started_at) VALUES (:source, now())
ON CONFLICT (source_name) DO UPDATE SET last_sync_started_at = now()
RETURNING watermark
""")
SUCCEED_SQL = text("""
UPDATE data_source_sync SET last_sync_completed_at = now(), last_sync_success = true, items_synced = :items,
       last_error = NULL, consecutive_failures = 0, consecutive_unreachable = 0,
       watermark = greatest(watermark, CAST(:watermark AS timestamptz))
WHERE source_name = :source
""")
FAIL_SQL = text("""
UPDATE data_source_sync SET last_sync_completed_at = now(), last_sync_success = false, items_synced = 0,
       last_error = :error, consecutive_failures = consecutive_failures + 1,
       consecutive_unreachable = CASE WHEN :unreachable THEN consecutive_unreachable + 1 ELSE 0 END
WHERE source_name = :source
RETURNING consecutive_failures, consecutive_unreachable
""")


@dataclass(frozen=True)
class Synced:
    items: int  # items fetched and processed this run
    watermark: datetime | None  # the newest change seen; None: nothing new


@dataclass(frozen=True)
class HealthRequest:
    base_url: str
    method: str
    path: str
    headers: dict
    params: dict | None = None
    json: dict | None = None


@dataclass(frozen=True)
class SyncResult:
    source: str
    status: str  # ok, skipped, failed
    items: int = 0
    detail: str = ""  # the skip reason or the error
    category: str | None = None  # the error category of a failure (client.py)


class SourceResource(dg.ConfigurableResource):
    """A data source's settings. Secrets are fields set from `dg.EnvVar`; `needs()` names what is missing."""

    name: ClassVar[str]
    retry_attempts: int = 5
    backoff_seconds: float = 2.0

    def needs(self) -> list[str]:
        """The environment variables this source still needs; [] when configured."""
        return []

    def fetch_and_store(self, postgres: PostgresResource, since: datetime | None) -> Synced:
        raise NotImplementedError

    def health_request(self) -> HealthRequest | None:
        """The smallest authenticated request the sync's own endpoint answers; None: nothing to probe."""
        return None

    @property
    def retry_rule(self) -> RetryRule:
        return RetryRule(attempts=self.retry_attempts, backoff_seconds=self.backoff_seconds)


def run_sync(source: SourceResource, postgres: PostgresResource, notifier: NotifierResource | None,
             log=None) -> SyncResult:
    """Sync `source` once; never raises for the source's own failures (they are recorded and alerted)."""
    missing = source.needs()
    if missing:
        reason = f"{source.name} is not configured: set {', '.join(missing)}"
        with postgres.begin() as conn:
            record(conn, action=f"sync_{source.name}", action_type="skip", success=False, error=reason)
        return SyncResult(source.name, "skipped", detail=reason)
    with postgres.begin() as conn:
        since = conn.execute(START_SQL, {"source": source.name}).scalar_one()
    try:
        synced = source.fetch_and_store(postgres, since)
    except SourceFailed as err:
        with postgres.begin() as conn:
            streak = conn.execute(FAIL_SQL, {"source": source.name, "error": str(err)[:1000],
                                             "unreachable": err.unreachable}).one()
        _alert(postgres, notifier, source.name, err, streak.consecutive_unreachable)
        if log:
            log.warning(f"{source.name}: {err}")
        return SyncResult(source.name, "failed", detail=str(err), category=err.category)
    with postgres.begin() as conn:
        conn.execute(SUCCEED_SQL, {"source": source.name, "items": synced.items, "watermark": synced.watermark})
    return SyncResult(source.name, "ok", items=synced.items)


def _alert(postgres: PostgresResource, notifier: NotifierResource | None, source: str, err: SourceFailed,
           unreachable_runs: int) -> None:
    if err.category == AUTH:
        incident = Incident("source_auth", source, Severity.WARN, f"{source}: credentials refused",
                            f"{err} Check the {source} token; the sync is not retried until it changes.")
    elif err.unreachable and unreachable_runs >= UNREACHABLE_RUNS:
        incident = Incident("source_unreachable", source, Severity.WARN,
                            f"{source} unreachable for {unreachable_runs} runs in a row", str(err))
    else:
        return
    at = datetime.now(UTC)
    with postgres.begin() as conn:
        open_incidents(conn, [incident], at)
        messages = unsent_notifications(conn, [incident], at)
    if notifier:
        notifier.send_batch(messages, at)
