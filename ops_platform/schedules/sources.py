"""Seed 003 source syncs on their own intervals (minutes, validated at load: settings.py).

| schedule               | default | setting (seed 003)                     | environment variable               |
|------------------------|---------|----------------------------------------|------------------------------------|
| sync_notion_schedule   | 60 min  | sources.notion.scan_interval_minutes   | OPS_NOTION_SCAN_INTERVAL_MINUTES   |
| sync_n8n_schedule      | 30 min  | sources.n8n.scan_interval_minutes      | OPS_N8N_SCAN_INTERVAL_MINUTES      |
| sync_hubspot_schedule  | 60 min  | sources.hubspot.poll_interval_minutes  | OPS_HUBSPOT_POLL_INTERVAL_MINUTES  |
"""

from ops_platform.framework.controls import NON_EMERGENCY_JOB
from ops_platform.jobs.sources import sync_hubspot_job, sync_n8n_job, sync_notion_job
from ops_platform.settings import current, interval_cron

SETTINGS = current()
from ops_platform.framework.schedules import gated_schedule


def _every(name, job, var: str, minutes: int, what: str):
    return gated_schedule(name, job, interval_cron(minutes), gates=NON_EMERGENCY_JOB,
                          description=f"Seed 003 {name.removesuffix('_schedule')}: {what}, every {minutes} minutes. Set {var} to change it.")


sync_notion_schedule = _every("sync_notion_schedule", sync_notion_job, "OPS_NOTION_SCAN_INTERVAL_MINUTES",
                              SETTINGS.notion_scan_interval_minutes,
                              "canonical Notion pages")
sync_n8n_schedule = _every("sync_n8n_schedule", sync_n8n_job, "OPS_N8N_SCAN_INTERVAL_MINUTES",
                           SETTINGS.n8n_scan_interval_minutes,
                           "failed n8n executions")
sync_hubspot_schedule = _every("sync_hubspot_schedule", sync_hubspot_job, "OPS_HUBSPOT_POLL_INTERVAL_MINUTES",
                               SETTINGS.hubspot_poll_interval_minutes,
                               "modified HubSpot contacts")
