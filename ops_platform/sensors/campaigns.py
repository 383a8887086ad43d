"""Seed 004 `campaign.status.changed` → "update snapshots": the changed hour of the hourly snapshots, alone
(campaigns/snapshots.py says when and why)."""

from __future__ import annotations

import dagster as dg

from ops_platform.assets.campaigns import HOURLY, campaign_metrics_hourly
from ops_platform.campaigns.snapshots import changed_hours
from ops_platform.framework.controls import WRITE_JOB
from ops_platform.framework.guard import tick_gate
from ops_platform.jobs.campaigns import campaign_metrics_job
from ops_platform.resources.postgres import PostgresResource
from ops_platform.sensors.events import parse_cursor


def _snapshot_after(instance: dg.DagsterInstance, partition: str, at_timestamp: float) -> bool:
    """Whether the hour's latest snapshot was materialized after `at_timestamp` (it already holds the change)."""
    latest = instance.fetch_materializations(
        dg.AssetRecordsFilter(asset_key=campaign_metrics_hourly.key, asset_partitions=[partition]), limit=1).records
    return bool(latest) and latest[0].timestamp > at_timestamp


@dg.sensor(job=campaign_metrics_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Seed 004 campaign.status.changed: rematerializes the hour of a change in the hourly "
                       "campaign snapshots, once that hour has ended and unless a later snapshot holds it already.")
def campaign_snapshot_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
    skip = tick_gate(postgres, "campaign_snapshot_sensor", WRITE_JOB)
    if skip:
        return dg.SensorResult(skip_reason=skip, cursor=context.cursor)
    hours, cursor = changed_hours(postgres, parse_cursor(context.cursor))
    requests = []
    for changed in hours:
        partition = HOURLY.get_partition_key_for_timestamp(changed.hour.timestamp())
        if not HOURLY.has_partition_key(partition) or _snapshot_after(
                context.instance, partition, changed.last_change_at.timestamp()):
            continue
        requests.append(dg.RunRequest(partition_key=partition,
                                      run_key=f"campaign.status.changed:{partition}:{changed.last_event_id}",
                                      tags={"ops/trigger": "campaign.status.changed"}))
    new_cursor = f"{cursor[0]}:{cursor[1]}" if cursor else context.cursor
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason(
            f"{len(hours)} changed hour(s), all already snapshotted after the change" if hours
            else "no campaign status change in an ended hour"), cursor=new_cursor)
    return dg.SensorResult(run_requests=requests, cursor=new_cursor)
