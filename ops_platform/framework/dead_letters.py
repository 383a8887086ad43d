"""Dead letters: work that exhausted its retries, kept with its error until someone resolves it."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import Connection, text

# A dead letter that comes back (the same work failed again) is reopened with its latest error.
DEAD_LETTER_SQL = text(
    "INSERT INTO dead_letters (source, dedup_key, payload, error, attempts)"
    " VALUES (:source, :key, CAST(:payload AS jsonb), :error, :attempts)"
    " ON CONFLICT (dedup_key) DO UPDATE SET error = EXCLUDED.error, attempts = EXCLUDED.attempts,"
    " resolved_at = NULL"
)
RESOLVE_SQL = text("UPDATE dead_letters SET resolved_at = now() WHERE dedup_key = :key AND resolved_at IS NULL")


def dead_letter(
    conn: Connection, *, source: str, dedup_key: str, error: str, attempts: int, payload: dict[str, Any] | None = None
) -> None:
    conn.execute(
        DEAD_LETTER_SQL,
        {"source": source, "key": dedup_key, "payload": json.dumps(payload or {}, default=str),
         "error": error[:4000], "attempts": attempts},
    )


def resolve_dead_letter(conn: Connection, dedup_key: str) -> None:
    """Mark a dead letter handled, e.g. when the work it stood for succeeded after all."""
    conn.execute(RESOLVE_SQL, {"key": dedup_key})
