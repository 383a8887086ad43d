"""Seed 003 sync jobs: one asset job per scheduled source (chat logs sync inside the periodic scan)."""

import dagster as dg

from ops_platform.assets.sources import hubspot_sync, n8n_sync, notion_sync
from ops_platform.retry_queue.reruns import NOT_QUEUED

# Not retried by Dagster nor by the retry queue: the next interval is the retry (seed 003 "Retry on next
# interval"); inside a run the client already retries each call with backoff.
NO_RUN_RETRIES = {"dagster/max_retries": "0", **NOT_QUEUED}

sync_notion_job = dg.define_asset_job("sync_notion_job", selection=[notion_sync], tags=NO_RUN_RETRIES,
                                      description="Seed 003 sync_notion: canonical Notion pages into memory_items.")
sync_n8n_job = dg.define_asset_job("sync_n8n_job", selection=[n8n_sync], tags=NO_RUN_RETRIES,
                                   description="Seed 003 sync_n8n: failed n8n executions, repeated failures → incident.")
sync_hubspot_job = dg.define_asset_job("sync_hubspot_job", selection=[hubspot_sync], tags=NO_RUN_RETRIES,
                                       description="Seed 003 sync_hubspot: modified contacts into memory_items.")
