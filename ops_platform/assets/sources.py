"""Seed 003 data sync jobs as assets, one per source: what each one keeps, and where.

Each materialization is one sync (sources/sync.py): an unconfigured source skips with the reason (no
materialization, audited as a skip, not a failure); a failed sync is recorded in data_source_sync,
alerted by its category, and fails the run without Dagster retries (the next interval retries it).
"""

from datetime import timedelta

import dagster as dg

from ops_platform.framework.asset_pages import HOURLY, asset_page, columns, fresh_within, row_count
from ops_platform.framework.controls import NON_EMERGENCY_JOB, gate_tags
from ops_platform.framework.guard import guard_run
from ops_platform.sources.sync import run_sync

GROUP = "sources"
COLUMNS = {
    "memory_items": columns(
        ("id", "bigint"), ("key", "text"), ("value", "jsonb"), ("authority", "text"), ("source_type", "text"),
        ("content_hash", "text"), ("version", "integer"), ("supersedes", "bigint"),
        ("created_at", "timestamp with time zone"), ("superseded_at", "timestamp with time zone"),
        ("supersede_reason", "text")),
    "n8n_executions": columns(
        ("id", "text"), ("workflow_id", "text"), ("status", "text"), ("started_at", "timestamp with time zone"),
        ("stopped_at", "timestamp with time zone"), ("synced_at", "timestamp with time zone")),
}
EVERY_30_MINUTES = fresh_within(timedelta(minutes=30), timedelta(minutes=30))


def source_asset(source: str, table: str, description: str, freshness: dg.FreshnessPolicy) -> dg.AssetsDefinition:
    """The asset of one source: reads the resource `<source>_source`."""
    resource_key = f"{source}_source"

    @dg.asset(name=f"{source}_sync", **asset_page(GROUP, table, COLUMNS[table], freshness), kinds={"postgres"},
              output_required=False, op_tags=gate_tags(NON_EMERGENCY_JOB),
              required_resource_keys={resource_key, "postgres", "notifier"}, description=description)
    def _sync(context: dg.AssetExecutionContext):
        postgres = context.resources.postgres
        guard_run(context, postgres)
        result = run_sync(getattr(context.resources, resource_key), postgres, context.resources.notifier, context.log)
        if result.status == "skipped":
            context.log.info(f"skipped: {result.detail}")
            return
        if result.status == "failed":
            raise dg.Failure(description=result.detail, metadata={"category": result.category}, allow_retries=False)
        yield dg.MaterializeResult(metadata=row_count(result.items) | {"items_synced": result.items})

    return _sync


# source → (its table, what the asset page says). Row counts: what the sync fetched and processed.
PAGES = {
    "notion": ("memory_items", "Notion pages tagged SOP / Canonical / Final as canonical memory_items "
                               "(notion.page.<id>); a changed page supersedes its previous row. ≤ 3 requests/s "
                               "across processes. Row count: pages synced."),
    "n8n": ("n8n_executions", "n8n executions with status error since the last sync; 3+ failures of one workflow "
                              "open a WARN incident repeated_failures (per workflow and hour). Row count: failed "
                              "executions fetched."),
    "hubspot": ("memory_items", "HubSpot contacts modified since the last sync (read-only) as memory_items "
                                "hubspot.contact.<id>, authority inferred. ≤ 100 requests/10 s across processes. "
                                "Row count: contacts fetched."),
    "chat_logs": ("memory_items", "Conversations with new messages in chat_logs as memory_items "
                                  "chat.conversation.<id> (authority inferred). Row count: conversations synced."),
}

notion_sync = source_asset("notion", *PAGES["notion"], HOURLY)
n8n_sync = source_asset("n8n", *PAGES["n8n"], EVERY_30_MINUTES)
hubspot_sync = source_asset("hubspot", *PAGES["hubspot"], HOURLY)
chat_logs_sync = source_asset("chat_logs", *PAGES["chat_logs"], EVERY_30_MINUTES)  # with the periodic scan
