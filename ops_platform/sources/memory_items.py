"""memory_items: what the sources teach the assistant. A changed item supersedes its current row.

The current row of a key is the one with `superseded_at IS NULL` (a unique index). Storing a batch:
1. retire the current rows whose content hash differs (superseded_at, supersede_reason), then
2. insert the new versions (version + 1, `supersedes` = the retired row) and the keys never seen.
An unchanged item writes nothing. Rows are never deleted (a trigger refuses DELETE: seed 003
"NEVER use DELETE"). Two syncs storing the same key at once: the index keeps one current row, the
other insert does nothing.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from hashlib import md5

from sqlalchemy import Connection, text

CANONICAL, INFERRED = "canonical", "inferred"

RETIRE_SQL = text("""
UPDATE memory_items m SET superseded_at = now(), supersede_reason = :reason
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS i(key text, content_hash text)
WHERE m.key = i.key AND m.superseded_at IS NULL AND m.content_hash <> i.content_hash
RETURNING m.key, m.id, m.version
""")
INSERT_SQL = text("""
INSERT INTO memory_items (key, value, authority, source_type, content_hash, version, supersedes)
SELECT i.key, i.value, :authority, :source_type, i.content_hash, coalesce(r.version, 0) + 1, r.id
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS i(key text, value jsonb, content_hash text)
LEFT JOIN jsonb_to_recordset(CAST(:retired AS jsonb)) AS r(key text, id bigint, version int) USING (key)
ON CONFLICT (key) WHERE superseded_at IS NULL DO NOTHING
RETURNING key
""")


def content_hash(value: object) -> str:
    return md5(json.dumps(value, sort_keys=True, default=str).encode()).hexdigest()


def store(conn: Connection, items: Mapping[str, object], *, authority: str, source_type: str,
          reason: str) -> list[str]:
    """Store {key: value}; returns the keys written (new or changed). `reason` is the supersede reason,
    e.g. canonical_update (seed 003)."""
    if not items:
        return []
    rows = json.dumps([{"key": k, "value": v, "content_hash": content_hash(v)} for k, v in items.items()],
                      default=str)
    retired = [dict(r._mapping) for r in conn.execute(RETIRE_SQL, {"rows": rows, "reason": reason})]
    return list(conn.execute(INSERT_SQL, {"rows": rows, "retired": json.dumps(retired), "authority": authority,
                                          "source_type": source_type}).scalars())
