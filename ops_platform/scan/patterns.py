"""Patterns: something that keeps happening, seen in the last 24 hours (seed 003 detectPatterns).

A **pattern** is a (kind, subject) with the evidence for it and a confidence in [0, 1]: how sure we are
that it is a standing problem rather than noise. Every detector computes confidence the same way,
from `hits` out of `trials` observations in the lookback:

    confidence = hits / (trials + PRIOR),  PRIOR = 2

i.e. the hit rate, pulled towards 0 by two imagined observations that did not hit, so that a few events
cannot look certain: 3 failures of a workflow give 0.6 (reported: ≥ 0.6), 5 give 0.71 (proposed: ≥ 0.7),
10 give 0.83. For counts of events (failures, supersessions) trials = hits; for an error rate, trials
are all the calls.

| kind              | reads           | hits / trials                                  |
|-------------------|-----------------|------------------------------------------------|
| workflow_failing  | n8n_executions  | failed executions of one n8n workflow          |
| source_errors     | api_calls       | failed calls / all calls of one external API   |
| memory_churn      | memory_items    | times one memory item was superseded           |

A detector is anything with a `kind` and `detect(conn, now, lookback) -> list[Pattern]`; a model could
implement the same interface (its confidence then is its own, with the same thresholds).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Protocol

from sqlalchemy import Connection, TextClause, text

PRIOR = 2
LOOKBACK = timedelta(hours=24)  # seed 003: lookback_hours 24
MIN_CONFIDENCE = 0.6  # seed 003: detectPatterns min_confidence
PROPOSAL_CONFIDENCE = 0.7  # seed 003: generateProposal when confidence ≥ 0.7


def confidence(hits: int, trials: int) -> float:
    """hits / (trials + PRIOR), rounded to 3 places; 0 with no trials. ValueError when hits > trials."""
    if hits < 0 or hits > trials:
        raise ValueError(f"hits must be between 0 and trials, got {hits} of {trials}")
    return round(hits / (trials + PRIOR), 3)


@dataclass(frozen=True)
class Pattern:
    kind: str
    subject: str
    confidence: float
    title: str
    suggestion: str  # what a proposal would ask someone to do
    evidence: dict = field(default_factory=dict)


class Detector(Protocol):
    kind: str

    def detect(self, conn: Connection, now: datetime, lookback: timedelta) -> list[Pattern]: ...


@dataclass(frozen=True)
class SqlDetector:
    """A detector as one query returning (subject, hits, trials, plus evidence columns) per candidate."""

    kind: str
    query: TextClause  # takes :since and :now
    title: str  # format string over the row's columns
    suggestion: str

    def detect(self, conn: Connection, now: datetime, lookback: timedelta) -> list[Pattern]:
        patterns = []
        for row in conn.execute(self.query, {"since": now - lookback, "now": now}).mappings():
            values = dict(row)
            patterns.append(Pattern(self.kind, str(row["subject"]), confidence(row["hits"], row["trials"]),
                                    self.title.format(**values), self.suggestion.format(**values),
                                    {k: (v.isoformat() if isinstance(v, datetime) else v) for k, v in values.items()}))
        return patterns


WORKFLOW_FAILING = SqlDetector(
    "workflow_failing",
    text("""SELECT workflow_id AS subject, count(*) AS hits, count(*) AS trials, max(started_at) AS last_failure
            FROM n8n_executions WHERE status = 'error' AND started_at > :since AND started_at <= :now
            GROUP BY workflow_id"""),
    "n8n workflow {subject} failed {hits} times in 24 h",
    "Fix or pause n8n workflow {subject}: it failed {hits} times in the last 24 hours (last at {last_failure:%H:%M} UTC).")
SOURCE_ERRORS = SqlDetector(
    "source_errors",
    text("""SELECT source AS subject, count(*) FILTER (WHERE NOT ok) AS hits, count(*) AS trials
            FROM api_calls WHERE ts > :since AND ts <= :now GROUP BY source HAVING count(*) FILTER (WHERE NOT ok) > 0"""),
    "{subject}: {hits} of {trials} API calls failed in 24 h",
    "Check the {subject} integration (credentials, limits, service status): {hits} of {trials} calls failed.")
MEMORY_CHURN = SqlDetector(
    "memory_churn",
    text("""SELECT key AS subject, count(*) AS hits, count(*) AS trials
            FROM memory_items WHERE superseded_at > :since AND superseded_at <= :now GROUP BY key"""),
    "{subject} superseded {hits} times in 24 h",
    "Settle {subject}: it changed {hits} times in a day; decide which version is canonical.")

DETECTORS: tuple[Detector, ...] = (WORKFLOW_FAILING, SOURCE_ERRORS, MEMORY_CHURN)


def detect_patterns(conn: Connection, now: datetime, detectors: Sequence[Detector] = DETECTORS,
                    lookback: timedelta = LOOKBACK, min_confidence: float = MIN_CONFIDENCE) -> list[Pattern]:
    """Every detector's patterns at or above `min_confidence`, most confident first."""
    found = [p for d in detectors for p in d.detect(conn, now, lookback) if p.confidence >= min_confidence]
    return sorted(found, key=lambda p: (-p.confidence, p.kind, p.subject))
