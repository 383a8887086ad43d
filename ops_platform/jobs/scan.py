"""Seed 003 periodic_scan: sync every source in parallel, detect patterns, propose, update incidents.

    sync_notion ─┐
    sync_n8n ────┼─> detect_patterns ─> generate_proposals
    sync_hubspot ┤
    sync_chat_logs ┴─> update_incidents

Each sync op records its own outcome and never fails for its source (one failing source never blocks
another; the scan's success criterion is "all data sources synced OR errors logged"). The scan is not
retried (the next run handles it); three failed runs in a row alert through the job_failure_streaks sensor.
Gates: NON_EMERGENCY_JOB (kill switch, jobs, writes and quiet hours: seed 003 beforeJobExecution).
"""

from datetime import UTC, datetime

import dagster as dg
from sqlalchemy import text

from ops_platform.framework.controls import NON_EMERGENCY_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.jobs.sources import NO_RUN_RETRIES
from ops_platform.scan.incidents import resolve_cleared
from ops_platform.scan.patterns import Pattern
from ops_platform.scan.patterns import detect_patterns as find_patterns
from ops_platform.scan.proposals import propose
from ops_platform.sources.sync import SyncResult, run_sync

SCAN_GATES = gate_tags(NON_EMERGENCY_JOB)
SOURCES = ("notion", "n8n", "hubspot", "chat_logs")  # each read from the resource `<source>_source`


def _sync_op(source: str) -> dg.OpDefinition:
    resource_key = f"{source}_source"

    @dg.op(name=f"sync_{source}", tags=SCAN_GATES, required_resource_keys={resource_key, "postgres", "notifier"},
           description=f"Sync {source}; records its outcome in data_source_sync and never fails for the source.")
    def _sync(context: dg.OpExecutionContext) -> dict:
        postgres = context.resources.postgres
        guard_run(context, postgres)
        result: SyncResult = run_sync(getattr(context.resources, resource_key), postgres,
                                      context.resources.notifier, context.log)
        if result.status == "ok":
            context.log_event(dg.AssetMaterialization(asset_key=f"{source}_sync",
                                                      metadata={"items_synced": result.items, "via": "periodic_scan"}))
        context.log.info(f"{source}: {result.status} {result.detail}".strip())
        return {"source": source, "status": result.status, "items": result.items, "detail": result.detail}

    return _sync


SYNC_OPS = [_sync_op(source) for source in SOURCES]


@dg.op(tags=SCAN_GATES, required_resource_keys={"postgres"},
       description="Patterns of the last 24 h at confidence ≥ 0.6 (scan/patterns.py).")
def detect_patterns(context: dg.OpExecutionContext, syncs: list[dict]) -> list[dict]:
    postgres = context.resources.postgres
    guard_run(context, postgres)
    with postgres.begin() as conn:
        patterns = find_patterns(conn, datetime.now(UTC))
    context.add_output_metadata({"patterns": len(patterns),
                                 "synced": ", ".join(f"{s['source']}={s['status']}" for s in syncs)})
    return [vars(p) for p in patterns]


@dg.op(tags=SCAN_GATES, required_resource_keys={"postgres"},
       description="Proposals for patterns at confidence ≥ 0.7, at most 10 an hour (the database's cap).")
def generate_proposals(context: dg.OpExecutionContext, patterns: list[dict]) -> int:
    postgres = context.resources.postgres
    guard_run(context, postgres)
    with postgres.begin() as conn:
        written = propose(conn, [Pattern(**p) for p in patterns])
    context.add_output_metadata({"proposals": len(written)})
    return len(written)


@dg.op(tags=SCAN_GATES, required_resource_keys={"postgres"},
       description="Resolves open incidents whose condition has cleared (scan/incidents.py).")
def update_incidents(context: dg.OpExecutionContext, syncs: list[dict]) -> int:
    postgres = context.resources.postgres
    guard_run(context, postgres)
    resolved = resolve_cleared(postgres, datetime.now(UTC))
    with postgres.begin() as conn:
        still_open = conn.execute(text("SELECT count(*) FROM incidents WHERE status = 'open'")).scalar_one()
    context.add_output_metadata({"resolved": len(resolved), "still_open": still_open})
    return len(resolved)


@dg.job(name="periodic_scan", tags=NO_RUN_RETRIES,
        description="Seed 003 periodic scan: sources in parallel, patterns (24 h, ≥ 0.6), proposals (≥ 0.7, ≤ 10/h), "
                    "incident resolution. Not retried; 3 failures in a row alert.")
def periodic_scan():
    syncs = [sync() for sync in SYNC_OPS]
    generate_proposals(detect_patterns(syncs))
    update_incidents(syncs)
