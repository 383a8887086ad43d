"""Retention and compaction crons: each seed's time for its own tables."""

from ops_platform.framework.schedules import gated_schedule
from ops_platform.jobs.maintenance import (
    activity_cleanup_job,
    archive_cleanup_job,
    execution_compaction_job,
    log_retention_job,
)

activity_cleanup_schedule = gated_schedule("activity_cleanup_schedule", activity_cleanup_job, "0 * * * *",
                                           description="Seed 002 cleanupOldActivity, hourly.")
execution_compaction_schedule = gated_schedule("execution_compaction_schedule", execution_compaction_job, "0 0 * * *",
                                               description="Seed 002 compactOldExecutions, daily at midnight UTC.")
log_retention_schedule = gated_schedule("log_retention_schedule", log_retention_job, "0 3 * * *",
                                        description="Seed 001 log cleanup, daily at 03:00 UTC.")
archive_cleanup_schedule = gated_schedule(
    "archive_cleanup_schedule", archive_cleanup_job, "0 2 * * *", timezone="America/Chicago",
    description="Seed 003 cleanup_old_data (archive, never delete), daily at 02:00 Central.")
