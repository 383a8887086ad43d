"""Seed 003's daily digest: the last 24 hours in at most five bullets, most severe first.

It carries the messages the policy routed to the digest (WARN and INFO), new incidents above INFO,
workflow runs and failures from the audit log, and new dead letters. Messages waiting for a digest
are taken whatever their age, so a missed day strands nothing.

Exactly once a day: the digest is recorded in `daily_digests` (primary key: the local date) in the
same transaction that marks the messages it carries 'digested'; then it is sent under the dedup key
`daily_digest:{local date}`, and its notification id is written to the day's row and to each message's
delivered_in. A run that stopped anywhere in between is finished by the next one with the recorded
content; a second run the same day sends nothing.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta

from sqlalchemy import Connection, text

from ops_platform.notifications import Notification, Severity

WAITING_SQL = text(
    "SELECT severity, type, count(*) AS n, (array_agg(title ORDER BY id DESC))[1] AS latest,"
    " array_agg(id) AS ids FROM notifications WHERE status = 'digest' AND created_at <= :at GROUP BY"
    " severity, type"
)
INCIDENTS_SQL = text(
    "SELECT severity, type, count(*) AS n, (array_agg(title ORDER BY created_at DESC))[1] AS latest FROM"
    " incidents WHERE severity <> 'INFO' AND created_at > :since AND created_at <= :at GROUP BY severity,"
    " type"
)
RUNS_SQL = text(
    "SELECT count(*) AS total, count(*) FILTER (WHERE NOT success) AS failed, (SELECT count(*) FROM"
    " dead_letters WHERE created_at > :since AND created_at <= :at) AS dead_letters FROM audit_log WHERE"
    " action_type = 'run' AND ts > :since AND ts <= :at"
)
ACTIVITY_SQL = text(
    "SELECT (SELECT count(*) FROM proposals WHERE created_at > :since AND created_at <= :at) AS"
    " proposals, (SELECT count(*) FROM memory_items WHERE superseded_at > :since AND superseded_at <="
    " :at) AS corrections, (SELECT count(*) FROM api_calls WHERE ts > :since AND ts <= :at) AS api_calls"
)
FAILED_JOBS_SQL = text(
    "SELECT action, count(*) AS n FROM audit_log WHERE action_type = 'run' AND NOT success AND ts >"
    " :since AND ts <= :at GROUP BY action ORDER BY n DESC, action"
)
RECORD_SQL = text(
    "INSERT INTO daily_digests (day, title, body, meta, channels, recipients) VALUES (:day, :title,"
    " :body, CAST(:meta AS jsonb), :channels, :recipients) ON CONFLICT (day) DO NOTHING RETURNING day"
)
MARK_INCLUDED_SQL = text(
    "WITH marked AS (UPDATE notifications SET status = 'digested', reason = 'in the daily digest of ' ||"
    " :day WHERE id = ANY(:ids) AND status = 'digest' RETURNING id) UPDATE daily_digests SET item_ids ="
    " ARRAY(SELECT id FROM marked ORDER BY id) WHERE day = CAST(:day AS date)"
)
RECORDED_SQL = text("SELECT * FROM daily_digests WHERE day = :day")
SENT_SQL = text("SELECT id, status FROM notifications WHERE dedup_key = :k")
LINK_SQL = text("UPDATE daily_digests SET notification_id = :id, status = :status, sent_at = now() WHERE day = :day")
LINK_NOTIFICATIONS_SQL = text(
    "UPDATE notifications SET delivered_in = :id, reason = 'sent in daily digest ' || :id WHERE id ="
    " ANY((SELECT item_ids FROM daily_digests WHERE day = :day)::bigint[]) AND status = 'digested'"
)

MAX_BULLETS = 5
WINDOW = timedelta(hours=24)
_RANK = {"SEV0": 0, "SEV1": 1, "WARN": 2, "INFO": 3}


@dataclass(frozen=True)
class Bullet:
    severity: str
    count: int
    text: str
    kind: int = 3  # within a severity: incidents 0, failed runs 1, dead letters 2, waiting messages 3


@dataclass
class DailyDigest:
    day: date
    bullets: list[str]
    metrics: dict[str, int]
    waiting_ids: list[int] = field(default_factory=list)

    @property
    def body(self) -> str:
        m = self.metrics
        footer = (f"Last 24 h: {m['new_incidents']} new incidents · {m['new_proposals']} new proposals ·"
                  f" {m['corrections_applied']} corrections applied · {m['workflows_executed']} workflow runs,"
                  f" {m['workflows_failed']} failed · {m['api_calls']} API calls · {m['dead_letters']} new dead"
                  f" letters · {m['digested']} messages in this digest")
        return "\n".join(f"• {b}" for b in self.bullets) + "\n\n" + footer

    def message(self, channels: tuple[str, ...], recipients: tuple[str, ...]) -> Notification:
        return Notification(type="daily_digest", severity=Severity.INFO, title=f"Daily Digest {self.day:%Y-%m-%d}",
                            body=self.body, dedup_key=dedup_key(self.day), meta=self.metrics,
                            channels=channels, recipients=recipients)


def dedup_key(day: date) -> str:
    return f"daily_digest:{day:%Y-%m-%d}"


def gather(conn: Connection, at: datetime, day: date) -> DailyDigest:
    """Everything the digest of `day` says, read at `at`; a few grouped queries."""
    since = at - WINDOW
    waiting = conn.execute(WAITING_SQL, {"at": at}).all()
    incidents = conn.execute(INCIDENTS_SQL, {"since": since, "at": at}).all()
    runs = conn.execute(RUNS_SQL, {"since": since, "at": at}).one()
    # Seed 003's other metrics: proposals made, memory corrections (an item superseded by a newer version),
    # calls to the external APIs.
    activity = conn.execute(ACTIVITY_SQL, {"since": since, "at": at}).one()
    failed_jobs = conn.execute(FAILED_JOBS_SQL, {"since": since, "at": at}).all()

    candidates = [Bullet(r.severity, r.n, f"{r.severity} incident{'s' if r.n > 1 else ''} ×{r.n} ({r.type}): "
                                          f"{r.latest}", kind=0) for r in incidents]
    if runs.failed:
        jobs = ", ".join(f"{j.action} ×{j.n}" for j in failed_jobs[:3]) + (" …" if len(failed_jobs) > 3 else "")
        candidates.append(Bullet("WARN", runs.failed, f"{runs.failed} of {runs.total} workflow runs failed ({jobs})",
                                 kind=1))
    if runs.dead_letters:
        candidates.append(Bullet("WARN", runs.dead_letters,
                                 f"{runs.dead_letters} new dead letters: work that ran out of retries", kind=2))
    candidates += [Bullet(r.severity, r.n, f"{r.type} ×{r.n}: {r.latest}" if r.n > 1 else f"{r.type}: {r.latest}")
                   for r in waiting]
    metrics = {"new_incidents": sum(r.n for r in incidents), "new_proposals": activity.proposals,
               "corrections_applied": activity.corrections, "api_calls": activity.api_calls,
               "workflows_executed": runs.total,
               "workflows_failed": runs.failed, "dead_letters": runs.dead_letters,
               "digested": sum(r.n for r in waiting)}
    return DailyDigest(day=day, bullets=prioritise(candidates), metrics=metrics,
                       waiting_ids=sorted(i for r in waiting for i in r.ids))


def prioritise(candidates: list[Bullet], limit: int = MAX_BULLETS) -> list[str]:
    """Most severe first; within a severity incidents, failed runs, dead letters, then messages, largest
    groups first. Beyond `limit`, the last bullet counts the rest."""
    ordered = sorted(candidates, key=lambda b: (_RANK[b.severity], b.kind, -b.count, b.text))
    if not ordered:
        return ["All quiet: nothing to report in the last 24 hours."]
    if len(ordered) <= limit:
        return [b.text for b in ordered]
    rest = ordered[limit - 1:]
    return [b.text for b in ordered[:limit - 1]] + [
        f"… and {len(rest)} more items ({sum(b.count for b in rest)} events), see the notification log"]


def record(conn: Connection, digest: DailyDigest, message: Notification) -> bool:
    """Record the day's digest and mark the messages it carries 'digested', in one transaction.

    False when the day's digest was recorded already (by an earlier or a concurrent run).
    """
    inserted = conn.execute(RECORD_SQL, {
        "day": digest.day, "title": message.title, "body": message.body, "meta": json.dumps(message.meta),
        "channels": list(message.channels or ()), "recipients": list(message.recipients)}).first()
    if inserted is None:
        return False
    # Only the messages still waiting are this digest's: a row another digest took meanwhile stays its own.
    conn.execute(MARK_INCLUDED_SQL, {"day": str(digest.day), "ids": digest.waiting_ids})
    return True


def recorded(conn: Connection, day: date) -> tuple[Notification, bool] | None:
    """The day's recorded digest as a message, and whether it was sent already; None if not recorded."""
    row = conn.execute(RECORDED_SQL, {"day": day}).mappings().first()
    if row is None:
        return None
    message = Notification(type="daily_digest", severity=Severity.INFO, title=row["title"], body=row["body"],
                           dedup_key=dedup_key(day), meta=row["meta"], channels=tuple(row["channels"]),
                           recipients=tuple(row["recipients"]))
    return message, row["notification_id"] is not None


def link(conn: Connection, day: date) -> str:
    """After sending: the digest's notification id goes on the day's row and on every message it carried."""
    sent = conn.execute(SENT_SQL, {"k": dedup_key(day)}).one()
    conn.execute(LINK_SQL, {"id": sent.id, "status": sent.status, "day": day})
    conn.execute(LINK_NOTIFICATIONS_SQL, {"id": sent.id, "day": day})
    return sent.status
