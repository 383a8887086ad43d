"""The backfill the platform asks for itself after a column was added to a synced table (sync/evolve.py).

The column was added in ClickHouse before the sync's next rows moved, so new rows carry it; the rows
already there get it from one full copy of the table (mode=full, one run whose partitions are the days
the table has rows on, which the run reports as materialized with their counts). The run
key has a retry window (framework/run_keys.py): a failed or refused backfill is asked for again while
the change is pending, and never twice at once.
"""

from datetime import UTC

import dagster as dg
from sqlalchemy import text

from ops_platform.assets.sync import DAILY
from ops_platform.framework.controls import WRITE_JOB
from ops_platform.framework.guard import tick_gate
from ops_platform.framework.run_keys import run_key
from ops_platform.jobs.sync import warehouse_sync_job
from ops_platform.resources.postgres import PostgresResource
from ops_platform.sync.evolve import pending_backfills
from ops_platform.sync.spec import SYNCED_TABLES

SPECS = {t.name: t for t in SYNCED_TABLES}
DATA_EXTENT_SQL = "SELECT min({c}), max({c}) FROM {t}"  # both ends of the partition column's index

BACKFILL_TAG = "ops/schema_backfill"
UNFINISHED = [dg.DagsterRunStatus.QUEUED, dg.DagsterRunStatus.NOT_STARTED, dg.DagsterRunStatus.STARTING,
              dg.DagsterRunStatus.STARTED]


@dg.sensor(job=warehouse_sync_job, minimum_interval_seconds=60, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Backfills a synced table whose Postgres table gained a column, so its existing rows hold it.")
def warehouse_backfill_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
    skip = tick_gate(postgres, "warehouse_backfill_sensor", WRITE_JOB)
    if skip:
        return dg.SensorResult(skip_reason=skip)
    keys = DAILY.get_partition_keys()
    requests = []
    for table, change_id in pending_backfills(postgres):
        if context.instance.get_run_records(
                filters=dg.RunsFilter(tags={BACKFILL_TAG: table}, statuses=UNFINISHED), limit=1):
            continue
        first, last = partition_range(postgres, table, keys)
        requests.append(dg.RunRequest(
            run_key=run_key("warehouse_backfill", [table, str(change_id)]),
            asset_selection=[dg.AssetKey(["warehouse", table])],
            run_config={"ops": {f"warehouse__{table}": {"config": {"mode": "full"}}}},
            tags={BACKFILL_TAG: table, "dagster/asset_partition_range_start": first,
                  "dagster/asset_partition_range_end": last},
        ))
    if not requests:
        return dg.SensorResult(skip_reason=dg.SkipReason("no added column waits for a backfill"))
    return dg.SensorResult(run_requests=requests)


def partition_range(postgres: PostgresResource, table: str, keys: list[str]) -> tuple[str, str]:
    """The partition keys of the first and last day `table` has rows on, clamped to the partitions."""
    with postgres.begin() as conn:
        lo, hi = conn.execute(text(DATA_EXTENT_SQL.format(c=SPECS[table].partition_column, t=table))).one()

    def key(at) -> str:
        day = at.astimezone(UTC).date().isoformat() if at else keys[-1]
        return min(max(day, keys[0]), keys[-1])

    return key(lo), key(hi)
