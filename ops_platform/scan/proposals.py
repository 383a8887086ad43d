"""Proposals from patterns (seed 003 generateProposal): confidence ≥ 0.7, at most 10 in any 60 minutes.

The cap is enforced by the database (0021_proposals.sql: a BEFORE INSERT trigger under a lock drops rows
past it), not by a count read here before inserting, so concurrent scans together stay within it. The
most confident patterns are offered first; one pending proposal per (kind, subject).
"""

from __future__ import annotations

import json
from collections.abc import Sequence

from sqlalchemy import Connection, text

from ops_platform.scan.patterns import PROPOSAL_CONFIDENCE, Pattern

PROPOSE_SQL = text("""
INSERT INTO proposals (pattern_kind, subject, confidence, title, body, evidence)
SELECT kind, subject, confidence, title, suggestion, evidence
FROM jsonb_to_recordset(CAST(:rows AS jsonb))
     AS p(kind text, subject text, confidence numeric, title text, suggestion text, evidence jsonb, rank int)
ORDER BY rank
ON CONFLICT (pattern_kind, subject) WHERE status = 'pending' DO NOTHING
RETURNING id, pattern_kind, subject
""")


def propose(conn: Connection, patterns: Sequence[Pattern]) -> list[tuple[int, str, str]]:
    """Insert proposals for the patterns at ≥ 0.7; returns (id, kind, subject) of those written."""
    ranked = sorted((p for p in patterns if p.confidence >= PROPOSAL_CONFIDENCE), key=lambda p: -p.confidence)
    if not ranked:
        return []
    rows = [{"kind": p.kind, "subject": p.subject, "confidence": p.confidence, "title": p.title,
             "suggestion": p.suggestion, "evidence": p.evidence, "rank": i} for i, p in enumerate(ranked)]
    return [tuple(r) for r in conn.execute(PROPOSE_SQL, {"rows": json.dumps(rows, default=str)})]
