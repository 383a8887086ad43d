"""Incidents: one row per type, subject and hour, and one notification of type `incident.<type>`.

The unique dedup key of `incidents` is what makes "no duplicate incidents" true: any number of
ticks, runs or daemons that see the same problem in the same hour open one incident. The
notification goes through the policy layer, whose default rate limit lets one `incident.<type>`
out per hour (the seed's "max 1 incident per type per hour"); the rest are recorded as rate-limited.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from sqlalchemy import Connection, text

from ops_platform.notifications import Notification, Severity


@dataclass(frozen=True)
class Incident:
    type: str  # e.g. repeated_failures, job_failing, synthetic_failed
    subject: str  # what it is about: an action, a bucket, a job, a check
    severity: Severity
    title: str
    body: str

    def dedup_key(self, at: datetime) -> str:
        return f"{self.type}:{self.subject}:{at.astimezone(UTC):%Y-%m-%dT%H}"

    def notification(self, at: datetime) -> Notification:
        return Notification(type=f"incident.{self.type}", severity=self.severity, title=self.title, body=self.body,
                            dedup_key=f"incident:{self.dedup_key(at)}",
                            meta={"incident_type": self.type, "subject": self.subject})


_OPEN_SQL = text("""
INSERT INTO incidents (type, severity, title, body, dedup_key, created_at)
SELECT i.type, i.severity, i.title, i.body, i.dedup_key, CAST(:at AS timestamptz)
FROM jsonb_to_recordset(CAST(:rows AS jsonb)) AS i(type text, severity text, title text, body text, dedup_key text)
ON CONFLICT (dedup_key) DO NOTHING
RETURNING dedup_key
""")


def open_incidents(conn: Connection, incidents: Sequence[Incident], at: datetime) -> list[Incident]:
    """Insert the incidents in one statement; return those that were new (not seen this hour)."""
    if not incidents:
        return []
    by_key = {i.dedup_key(at): i for i in incidents}
    rows = [{"type": i.type, "severity": str(i.severity), "title": i.title, "body": i.body, "dedup_key": key}
            for key, i in by_key.items()]
    created = {row.dedup_key for row in conn.execute(_OPEN_SQL, {"rows": json.dumps(rows), "at": at})}
    return [i for key, i in by_key.items() if key in created]


def unsent_notifications(conn: Connection, incidents: Sequence[Incident], at: datetime) -> list[Notification]:
    """The messages of these incidents that the notifier has not recorded yet.

    Senders ask for every incident that holds, not only the ones opened just now: a message lost
    between opening the incident and delivering it (a crash, a failed run) is asked for again, and
    the notification's own unique dedup key still keeps it to one delivery.
    """
    return unrecorded(conn, [i.notification(at) for i in incidents])


def unrecorded(conn: Connection, messages: Sequence[Notification]) -> list[Notification]:
    """The messages whose dedup key the notifier has not recorded yet (each key once)."""
    messages = {m.dedup_key: m for m in messages}
    if not messages:
        return []
    recorded = set(conn.execute(text("SELECT dedup_key FROM notifications WHERE dedup_key = ANY(:keys)"),
                                {"keys": list(messages)}).scalars())
    return [m for key, m in messages.items() if key not in recorded]
