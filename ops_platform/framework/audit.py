"""The audit log: one row per run outcome, skip, refusal and control change."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

# A run's outcome is one row (unique run_id for action_type 'run'); a later success replaces a failure.
RECORD_SQL = text(
    "INSERT INTO audit_log (action, action_type, run_id, success, error, duration_ms, output_data)"
    " VALUES (:action, :action_type, :run_id, :success, :error, :duration_ms, CAST(:output AS jsonb))"
    " ON CONFLICT (run_id) WHERE action_type = 'run' DO UPDATE SET success = true, error = NULL,"
    " duration_ms = EXCLUDED.duration_ms, output_data = EXCLUDED.output_data"
    " WHERE EXCLUDED.success AND NOT audit_log.success"
)


def record(
    conn: Connection,
    *,
    action: str,
    action_type: str,
    success: bool,
    run_id: str | None = None,
    error: str | None = None,
    duration_ms: int | None = None,
    output: dict[str, Any] | None = None,
) -> None:
    """Insert an audit row. A run's outcome is recorded once even if reported twice, except that a success
    replaces a failure recorded before it: a run reported failed and then successful (a duplicate run
    worker failed it, the real one finished) did its work, and its row must say so."""
    conn.execute(
        RECORD_SQL,
        {
            "action": action,
            "action_type": action_type,
            "run_id": run_id,
            "success": success,
            "error": error,
            "duration_ms": duration_ms,
            "output": json.dumps(output or {}, default=str),
        },
    )
