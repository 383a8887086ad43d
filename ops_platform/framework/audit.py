"""The audit log: one row per run outcome, skip, refusal and control change."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text


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
    """Insert an audit row. A run's outcome is recorded once even if reported twice."""
    conn.execute(
        text(
            "INSERT INTO audit_log (action, action_type, run_id, success, error, duration_ms, output_data)"
            " VALUES (:action, :action_type, :run_id, :success, :error, :duration_ms, CAST(:output AS jsonb))"
            " ON CONFLICT (run_id) WHERE action_type = 'run' DO NOTHING"
        ),
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
