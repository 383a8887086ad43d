"""Seed 004 synthetic monitoring: probe the configured endpoints, keep status and latency in ClickHouse,
open an incident for each failing check.

Probing holds no warehouse slot: only the step that writes sits in the `warehouse` pool, and the
incidents do not wait for (or depend on) the warehouse write.
"""

from datetime import UTC, datetime

import dagster as dg
from pydantic import Field

from ops_platform.framework.controls import WRITE_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.framework.retries import DEFAULT_RETRY_POLICY
from ops_platform.monitoring.incidents import Incident, open_incidents, unsent_notifications
from ops_platform.monitoring.flows import is_step, run_monitors
from ops_platform.monitoring.probes import ProbeResult, probe_all
from ops_platform.monitoring.synthetics import configured_checks
from ops_platform.notifications import NotifierResource, Severity
from ops_platform.resources.postgres import PostgresResource
from ops_platform.resources.warehouse import WAREHOUSE_POOL, WarehouseResource

RESULT_COLUMNS = ["ts", "check_name", "url", "status_code", "latency_ms", "ok", "error", "run_id"]
COMMON = dict(tags=gate_tags(WRITE_JOB), retry_policy=DEFAULT_RETRY_POLICY)


class ProbeConfig(dg.Config):
    timeout_seconds: float = Field(default=10.0, gt=0, description="Per request; no answer in time is a failure.")


@dg.op(**COMMON)
def probe_endpoints(context: dg.OpExecutionContext, config: ProbeConfig,
                    postgres: PostgresResource) -> dg.Output[list[ProbeResult]]:
    guard_run(context, postgres)
    results = probe_all(configured_checks(postgres), config.timeout_seconds) + run_monitors(config.timeout_seconds)
    failed = [r for r in results if not r.ok]
    for r in failed:
        context.log.warning(f"synthetic check {r.name} ({r.url}) failed: {r.error}")
    if not results:
        context.log.info("no synthetic checks configured (OPS_SYNTHETICS_BASE_URL, OPS_SYNTHETIC_CHECKS or rows "
                         "of synthetic_checks)")
    return dg.Output(results, metadata={"checks": len(results), "failed": len(failed),
                                        "slowest_ms": max((r.latency_ms for r in results), default=0.0)})


@dg.op(pool=WAREHOUSE_POOL, **COMMON)
def store_synthetic_results(context: dg.OpExecutionContext, postgres: PostgresResource, warehouse: WarehouseResource,
                            results: list[ProbeResult]) -> dg.Output[None]:
    guard_run(context, postgres)
    rows = [[r.ts, r.name, r.url, r.status_code, r.latency_ms, r.ok, r.error, context.run.run_id] for r in results]
    if rows:
        with warehouse.client() as ch:
            ch.insert("synthetic_results", rows, column_names=RESULT_COLUMNS)
    return dg.Output(None, metadata={"rows": len(rows)})


@dg.op(**COMMON)
def raise_synthetic_incidents(context: dg.OpExecutionContext, postgres: PostgresResource, notifier: NotifierResource,
                              results: list[ProbeResult]) -> dg.Output[None]:
    guard_run(context, postgres)
    return dg.Output(None, metadata=raise_failure_incidents(postgres, notifier, results, datetime.now(UTC)))


def raise_failure_incidents(postgres: PostgresResource, notifier: NotifierResource, results: list[ProbeResult],
                            now: datetime) -> dict[str, int]:
    """Open an incident per failing check or default monitor (once per check and hour; a monitor's steps
    are stored, not alerted) and send what was not sent yet."""
    incidents = [failure_incident(r) for r in results if not r.ok and not is_step(r.name)]  # a flow alerts once
    with postgres.begin() as conn:
        new = open_incidents(conn, incidents, now)
        messages = unsent_notifications(conn, incidents, now)
    statuses = notifier.send_batch(messages, at=now) if messages else []
    return {"failing_checks": len(incidents), "new_incidents": len(new), "notified": len(statuses)}


def failure_incident(result: ProbeResult) -> Incident:
    """Down or wrong answer: WARN. Right answer, too slow: INFO."""
    severity = Severity.INFO if result.slow_only else Severity.WARN
    return Incident("synthetic_failed", result.name, severity, f"Synthetic check failed: {result.name}",
                    f"{result.name} ({result.url}) at {result.ts:%Y-%m-%d %H:%M:%S} UTC: {result.error}.")


@dg.job(tags={"ops/kind": "monitoring"},
        description="Seed 004 synthetic monitoring: HTTP checks, results in ClickHouse, an incident per failing check.")
def synthetics_job():
    results = probe_endpoints()
    store_synthetic_results(results)
    raise_synthetic_incidents(results)
