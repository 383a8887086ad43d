"""Seed 003 periodic_scan every 30 minutes (jobs.periodic_scan.interval_minutes: OPS_PERIODIC_SCAN_INTERVAL_MINUTES).

The tick checks the same gates as the scan's steps (kill switch, jobs, writes, quiet hours) and skips
with the reason; each tick's run key is its scheduled time, so a tick evaluated twice launches one run.
"""

import dagster as dg

from ops_platform.framework.controls import NON_EMERGENCY_JOB
from ops_platform.jobs.scan import periodic_scan
from ops_platform.settings import current, interval_cron
from ops_platform.framework.schedules import gated_schedule

INTERVAL_VAR = "OPS_PERIODIC_SCAN_INTERVAL_MINUTES"
SCAN_MINUTES = current().periodic_scan_interval_minutes
SCAN_CRON = interval_cron(SCAN_MINUTES)

periodic_scan_schedule = gated_schedule(
    "periodic_scan_schedule", periodic_scan, SCAN_CRON, gates=NON_EMERGENCY_JOB,
    request=lambda context: dg.RunRequest(run_key=f"periodic_scan:{context.scheduled_execution_time:%Y-%m-%dT%H:%M}"),
    description=f"Seed 003 periodic scan, every {SCAN_MINUTES} minutes (at most 48 runs a day at 30). "
                f"Set {INTERVAL_VAR} to change it.")
