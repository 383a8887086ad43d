"""Manual triggers (seed 004 "Manual Triggers", seed 001's POST /api/cron/cleanup, seed 000's cleanup-expired-orgs): each launches one Dagster
run through the webserver's GraphQL API (`DagsterGraphQLClient`), as the UI would, and returns its run id.

A trigger plans its run from the request (which partition, which config) and checks what it can before
launching: a date or hour that is no partition, a campaign that does not exist, are refused with 400/404
and launch nothing. The run carries the tags `ops/trigger` (the route) and `dagster/partition`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any
from urllib.parse import urlparse

import dagster as dg
from dagster_graphql import DagsterGraphQLClient, DagsterGraphQLClientError
from sqlalchemy import text

from ops_platform.assets.campaigns import DAILY_SCORES, HOURLY, campaign_metrics_hourly
from ops_platform.assets.finops import COST_DAYS
from ops_platform.assets.sync import DAILY, WAREHOUSE_ASSETS
from ops_platform.resources.postgres import PostgresResource

_CAMPAIGN_SQL = text("SELECT 1 FROM campaigns WHERE id = :id")


class BadTrigger(ValueError):
    """The request names no run that can be launched; `status` 400 (bad input) or 404 (unknown campaign)."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class LaunchFailed(RuntimeError):
    """Dagster's webserver did not launch the run (unreachable, job unknown, config refused): answer 502."""


@dataclass(frozen=True)
class Launch:
    job: str
    partition: str | None = None
    run_config: dict[str, Any] = field(default_factory=dict)


Plan = Callable[[dict[str, Any], dict[str, Any], PostgresResource, datetime], Launch]


@dataclass(frozen=True)
class Trigger:
    path: str  # Starlette route path
    secret: str  # "api" (OPS_API_TOKEN) or "cron" (CRON_SECRET)
    plan: Plan


def _partition(partitions: dg.TimeWindowPartitionsDefinition, given: Any, default_at: datetime, what: str) -> str:
    key = partitions.get_partition_key_for_timestamp(default_at.timestamp()) if given is None else given
    if not isinstance(key, str) or not partitions.has_partition_key(key):
        raise BadTrigger(f"{what} {given!r} is not a partition: expected e.g. "
                         f"{partitions.get_partition_key_for_timestamp(default_at.timestamp())!r}, not in the future")
    return key


def vis(path: dict, body: dict, postgres: PostgresResource, now: datetime) -> Launch:
    """VIS recalculation: {"date": "YYYY-MM-DD"} (default yesterday, as the 02:00 schedule does)."""
    return Launch("vis_job", _partition(DAILY_SCORES, body.get("date"), now - timedelta(days=1), "date"))


def campaign_snapshot(path: dict, body: dict, postgres: PostgresResource, now: datetime) -> Launch:
    """One campaign's snapshot: that campaign's row of the hour {"hour": "YYYY-MM-DD-HH:00"} (default the hour
    just ended) of the hourly snapshot asset, run with `campaign_ids: [id]` so the other campaigns' rows of
    the hour are left as they are; 404 for an unknown campaign."""
    try:
        campaign_id = int(path["campaign_id"])
    except ValueError:
        raise BadTrigger(f"campaign id {path['campaign_id']!r} is not a whole number") from None
    with postgres.begin() as conn:
        if conn.execute(_CAMPAIGN_SQL, {"id": campaign_id}).first() is None:
            raise BadTrigger(f"campaign {campaign_id} does not exist", 404)
    config = {"ops": {campaign_metrics_hourly.op.name: {"config": {"campaign_ids": [campaign_id]}}}}
    return Launch("campaign_metrics_job", _partition(HOURLY, body.get("hour"), now - timedelta(hours=1), "hour"), config)


def data_sync(path: dict, body: dict, postgres: PostgresResource, now: datetime) -> Launch:
    """Postgres → ClickHouse sync now: today's partition, incremental (rows changed since the watermark)."""
    config = {"ops": {a.op.name: {"config": {"mode": "incremental"}} for a in WAREHOUSE_ASSETS}}
    return Launch("warehouse_sync_job", _partition(DAILY, None, now, "date"), config)


def cost_aggregation(path: dict, body: dict, postgres: PostgresResource, now: datetime) -> Launch:
    """FinOps cost aggregation: {"date": "YYYY-MM-DD"} (default yesterday)."""
    return Launch("cost_aggregation_job", _partition(COST_DAYS, body.get("date"), now - timedelta(days=1), "date"))


def cron_cleanup(path: dict, body: dict, postgres: PostgresResource, now: datetime) -> Launch:
    """Seed 001's manual cleanup: the 03:00 UTC log retention job, now."""
    return Launch("log_retention_job")


def guest_cleanup(path: dict, body: dict, postgres: PostgresResource, now: datetime) -> Launch:
    """Seed 000's `/api/cron/cleanup-expired-orgs`: the guest organisation cleanup, now."""
    return Launch("guest_cleanup_job")


TRIGGERS = [
    Trigger("/v1/impact-calculator/recalculate", "api", vis),
    Trigger("/v1/campaigns/{campaign_id}/snapshot", "api", campaign_snapshot),
    Trigger("/v1/analytics/sync", "api", data_sync),
    Trigger("/v1/analytics/finops/aggregate", "api", cost_aggregation),
    Trigger("/api/cron/cleanup", "cron", cron_cleanup),
    Trigger("/api/cron/cleanup-expired-orgs", "cron", guest_cleanup),
]


def launch(dagster_url: str, run: Launch, route: str) -> str:
    """Submit `run` to the Dagster webserver at `dagster_url` (its /graphql); return the new run's id.
    Raises LaunchFailed with Dagster's reason."""
    url = urlparse(dagster_url)
    tags = {"ops/trigger": route} | ({"dagster/partition": run.partition} if run.partition else {})
    try:
        client = DagsterGraphQLClient(url.hostname or "127.0.0.1", port_number=url.port, use_https=url.scheme == "https",
                                      path_prefix=url.path.rstrip("/"), timeout=30)
        return client.submit_job_execution(run.job, run_config=run.run_config or None, tags=tags)
    except DagsterGraphQLClientError as err:
        raise LaunchFailed(f"Dagster at {url.scheme}://{url.netloc} did not launch {run.job}: "
                           f"{' '.join(str(a) for a in err.args)[:500]}") from None


def now_utc() -> datetime:
    return datetime.now(UTC)
