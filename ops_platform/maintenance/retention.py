"""Retention, one policy per table, applied by one function.

Seed 001 deletes logs after 90 days; seed 003 never deletes, it archives. Both rules hold here,
each as the default of the tables it was written for:

| table               | rule                                   | from     |
|---------------------|----------------------------------------|----------|
| agent_activity_feed | delete after 7 days                    | seed 002 |
| executions          | move to ClickHouse after 30 days       | seed 002 |
| system_logs         | delete after 90 days                   | seed 001 |
| audit_logs          | delete after 90 days (the SaaS product's own audit log) | seed 001 |
| audit_log           | archive flag after 365 days, never deleted (003 wins over 001's 90-day delete: the audit trail is evidence) | seed 003 |
| retry_jobs          | archive completed jobs after 30 days   | seed 003 |
| incidents           | archive resolved incidents after 90 days | seed 003 |
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, text


@dataclass(frozen=True)
class RetentionPolicy:
    table: str
    age_column: str
    max_age: timedelta
    action: Literal["delete", "archive_flag", "move_to_warehouse"]
    condition: str = "TRUE"  # which rows the rule is about at all, e.g. status = 'resolved'

    def cutoff(self, now: datetime) -> datetime:
        return now - self.max_age


POLICIES = {
    p.table: p
    for p in (
        RetentionPolicy("agent_activity_feed", "ts", timedelta(days=7), "delete"),
        RetentionPolicy("executions", "ts", timedelta(days=30), "move_to_warehouse"),
        RetentionPolicy("system_logs", "ts", timedelta(days=90), "delete"),
        RetentionPolicy("audit_logs", "ts", timedelta(days=90), "delete"),
        RetentionPolicy("audit_log", "ts", timedelta(days=365), "archive_flag"),
        RetentionPolicy("retry_jobs", "updated_at", timedelta(days=30), "archive_flag", "status = 'completed'"),
        RetentionPolicy("incidents", "resolved_at", timedelta(days=90), "archive_flag", "status = 'resolved'"),
    )
}

# Deletes in this transaction are retention, not tombstones: the sync's trigger (ops_sync_tombstone)
# skips them, so the warehouse keeps what retention removes.
RETENTION_MODE_SQL = text("SET LOCAL ops.retention = 'on'")
DELETE_EXPIRED_SQL = "DELETE FROM {table} WHERE {age_column} < :cutoff AND ({condition})"
ARCHIVE_EXPIRED_SQL = ("UPDATE {table} SET archived = true "
                       "WHERE {age_column} < :cutoff AND ({condition}) AND NOT archived")
LOG_RESULT_SQL = text(
    "INSERT INTO system_logs (level, source, message, data) VALUES ('INFO', :s, :m, CAST(:d AS jsonb))"
)


def apply_in_postgres(conn: Connection, policy: RetentionPolicy, now: datetime) -> dict:
    """Delete or flag the rows past the policy's age; return the seed's report shape."""
    cutoff = policy.cutoff(now)
    names = {"table": policy.table, "age_column": policy.age_column, "condition": policy.condition}
    if policy.action == "delete":
        conn.execute(RETENTION_MODE_SQL)
        count = conn.execute(text(DELETE_EXPIRED_SQL.format(**names)), {"cutoff": cutoff}).rowcount
        result = {"deleted": count}
    elif policy.action == "archive_flag":
        count = conn.execute(text(ARCHIVE_EXPIRED_SQL.format(**names)), {"cutoff": cutoff}).rowcount
        result = {"archived": count}
    else:
        raise ValueError(f"{policy.table}: {policy.action} needs the warehouse; use the compaction job")
    return {"table": policy.table, **result, "cutoffTime": cutoff.isoformat()}


def log_result(conn: Connection, source: str, result: dict) -> None:
    """Seed 001: every cleanup writes its result to system_logs."""
    conn.execute(LOG_RESULT_SQL, {"s": source, "m": f"{source}: {result}", "d": json.dumps(result, default=str)})
