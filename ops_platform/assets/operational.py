"""The operational tables the jobs read, as external assets, with the seed-002 health check on them.

Health check (every 30 minutes): table sizes; WARN above 100 000 tasks or 1 000 000 activity rows,
ERROR when the database cannot be reached. Each run's status (healthy, warning, error) and sizes, the
seed's example output, are in every check's metadata and in `health_check_results`; the job-health monitor
alerts on an error or on a repeated warning (monitoring/job_health.py).
"""

from __future__ import annotations

import dagster as dg
from sqlalchemy import text

from ops_platform.resources.postgres import DatabaseUnavailable, PostgresResource

TABLES = ["builds", "tasks", "executions", "agent_activity_feed", "user_profiles", "agents",
          "campaigns", "volunteer_activities"]
WARN_ABOVE = {"tasks": 100_000, "agent_activity_feed": 1_000_000}

TABLE_ROWS_SQL = "SELECT count(*) FROM {table}"

OPERATIONAL = [
    dg.AssetSpec(key=["postgres", t], group_name="operational", kinds={"postgres"},
                 description=f"The operational `{t}` table (written by the product, read by the platform).")
    for t in TABLES
]
CHECK_SPECS = [dg.AssetCheckSpec("table_size", asset=spec.key,
                                 description=f"Rows in {spec.key.path[-1]}"
                                 + (f"; WARN above {WARN_ABOVE[spec.key.path[-1]]:,}" if spec.key.path[-1] in WARN_ABOVE else ""))
               for spec in OPERATIONAL]


# The seed's example output: its names for the sizes.
REPORTED = {"builds": "buildTableSize", "tasks": "taskTableSize", "executions": "executionTableSize",
            "agent_activity_feed": "activityTableSize", "user_profiles": "userTableSize"}
RECORD_SQL = text("""
INSERT INTO health_check_results (status, build_table_size, task_table_size, execution_table_size,
                                  activity_table_size, user_table_size, error)
VALUES (:status, :buildTableSize, :taskTableSize, :executionTableSize, :activityTableSize, :userTableSize, :error)
RETURNING ts
""")


@dg.multi_asset_check(specs=CHECK_SPECS, description="Seed 002 healthCheck: table sizes and reachability.")
def table_size_checks(postgres: PostgresResource):
    try:
        with postgres.begin() as conn:
            sizes = {t: conn.execute(text(TABLE_ROWS_SQL.format(table=t))).scalar_one() for t in TABLES}
            warning = any(sizes[t] > limit for t, limit in WARN_ABOVE.items())
            output = {name: sizes[t] for t, name in REPORTED.items()} | {"status": "warning" if warning else "healthy"}
            output["timestamp"] = conn.execute(RECORD_SQL, output | {"error": None}).scalar_one().isoformat()
    except DatabaseUnavailable as err:
        status = {"status": "error", "error": str(err)}  # nowhere to record it: the health monitor alerts
        for spec in CHECK_SPECS:
            yield dg.AssetCheckResult(asset_key=spec.asset_key, check_name=spec.name, passed=False,
                                      severity=dg.AssetCheckSeverity.ERROR, metadata=status)
        return
    for spec in CHECK_SPECS:
        table = spec.asset_key.path[-1]
        limit = WARN_ABOVE.get(table)
        yield dg.AssetCheckResult(
            asset_key=spec.asset_key, check_name=spec.name, passed=limit is None or sizes[table] <= limit,
            severity=dg.AssetCheckSeverity.WARN,
            metadata={"rows": sizes[table], **({"warn_above": limit} if limit else {}),
                      "status": output["status"], "health_check": dg.MetadataValue.json(output)},
        )
