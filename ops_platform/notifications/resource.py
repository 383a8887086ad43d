"""NotifierResource: the one way any job sends a message.

Each message is claimed under its unique dedup key (a row lock held while it is delivered, so two
senders never both deliver it), decided by the policy, then delivered or recorded with its reason.
Everything not delivered at once leaves a line in the suppression log saying why.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections import defaultdict
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field
from sqlalchemy import Connection, text

from ops_platform.framework.controls import read_controls
from ops_platform.framework.dead_letters import dead_letter
from ops_platform.notifications.channels import Channel
from ops_platform.outbound.retry import DeliveryError
from ops_platform.notifications.message import Notification, Severity
from ops_platform.notifications.redelivery import dead_job_notice, on_delivery_failure
from ops_platform.notifications.policy import (
    DEFAULT_GROUP_OVER,
    DEFAULT_RATE_LIMITS,
    DEFAULT_ROUTES,
    Decision,
    decide,
    parse_rate_limits,
    rate_limit_for,
)
from ops_platform.notifications.transports import ChannelsResource
from ops_platform.resources.postgres import PostgresResource
from ops_platform.settings import ConfigError

GROUP_LIST_LIMIT = 50  # lines listed in a grouped message; the rest are counted


class NotifierResource(dg.ConfigurableResource):
    """Dedup, policy and delivery. Channel secrets live in ChannelsResource (EnvVar) and never reach logs."""

    postgres: PostgresResource
    channels: ChannelsResource = Field(default_factory=ChannelsResource)
    routes: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_ROUTES),
                                         description="Severity → channel names ('digest' waits for the daily digest).")
    rate_limits: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_RATE_LIMITS),
                                        description="Message type (or 'prefix.*') → 'N/window', e.g. '1/1h'.")
    group_over: int = Field(default=DEFAULT_GROUP_OVER,
                            description="More messages than this of one type in one batch go out as one; 0: never.")

    def send(self, message: Notification, at: datetime | None = None) -> str:
        """Deliver `message` once; returns the recorded status, or 'duplicate' if its key was seen."""
        return self.send_batch([message], at)[0]

    def send_batch(self, messages: Sequence[Notification], at: datetime | None = None) -> list[str]:
        """Statuses in the order of `messages`. Large same-type batches are grouped into one message."""
        at = at or datetime.now(UTC)
        limits = parse_rate_limits(self.rate_limits)
        statuses: dict[int, str] = {}
        # Only messages that would go to the same people the same way can share one grouped message.
        by_type: dict[tuple, list[int]] = defaultdict(list)
        for index, message in enumerate(messages):
            by_type[(message.type, tuple(message.channels or ()), tuple(message.recipients))].append(index)
        policy = _Policy(self, at, limits)
        with self._channel_cache() as channel:
            for indexes in by_type.values():
                if self.group_over and len(indexes) > self.group_over:
                    group = [messages[i] for i in indexes]
                    statuses.update(zip(indexes, self._send_group(group, at, policy, channel), strict=True))
                    continue
                for i in indexes:
                    statuses[i] = self._send_one(messages[i], at, policy, channel)
        return [statuses[i] for i in range(len(messages))]

    def release_held(self, at: datetime | None = None) -> dict[str, int]:
        """Deliver every message held by quiet hours once they are over. Returns {status: count}."""
        at = at or datetime.now(UTC)
        counts: dict[str, int] = defaultdict(int)
        with self._channel_cache() as channel:
            with self.postgres.begin() as conn:
                if read_controls(conn).in_quiet_hours(at):
                    return {}
            while True:
                with self.postgres.begin() as conn:
                    row = conn.execute(text(
                        "SELECT * FROM notifications WHERE status = 'held' ORDER BY id LIMIT 1 FOR UPDATE SKIP LOCKED"
                    )).mappings().first()
                    if row is None:
                        break
                    message = Notification.from_row(row)
                    decision = decide(message, read_controls(conn), self.routes, at)
                    if decision.status == "held":  # quiet hours again: the rest waits for the next release
                        break
                    if decision.status == "deliver":
                        decision = Decision("deliver", tuple(row["channels"]))
                    counts[self._apply(conn, row["id"], message, decision, channel)] += 1
        return dict(counts)

    def notify_dead_jobs(self, jobs: list, at: datetime) -> None:
        """The retry queue's DeadJobNotifier: one WARN notice per dead job (grouped when many)."""
        self.send_batch([dead_job_notice(job) for job in jobs], at)

    def channel(self, name: str) -> Channel:
        return self.channels.channel(name)

    # -- internals -------------------------------------------------------------------------------

    def _send_one(self, message: Notification, at: datetime, policy: _Policy, channel) -> str:
        with self.postgres.begin() as conn:
            notification_id = _claim(conn, message, at)
            if notification_id is None:
                _log(conn, message, "duplicate", "this dedup key was already handled", None)
                return "duplicate"
            return self._apply(conn, notification_id, message, policy.decide(conn, message), channel)

    def _send_group(self, group: list[Notification], at: datetime, policy: _Policy, channel) -> list[str]:
        """Claim every member, then deliver one message that lists them; members point at it."""
        with self.postgres.begin() as conn:
            ids = [_claim(conn, m, at) for m in group]
            fresh = [(i, m) for i, m in zip(ids, group, strict=True) if i is not None]
            statuses = {}
            for i, m in zip(ids, group, strict=True):
                if i is None:
                    _log(conn, m, "duplicate", "this dedup key was already handled", None)
            deliverable = []
            for notification_id, message in fresh:
                decision = policy.decide(conn, message)
                if decision.status == "deliver":
                    deliverable.append((notification_id, message, decision))
                else:
                    statuses[notification_id] = self._apply(conn, notification_id, message, decision, channel)
            if len(deliverable) > self.group_over:
                summary = _group_message(group[0].type, [m for _, m, _ in deliverable])
                group_id = _claim(conn, summary, at)
                channels = tuple(dict.fromkeys(c for _, _, d in deliverable for c in d.channels))
                status = self._apply(conn, group_id, summary, Decision("deliver", channels), channel)
                member_ids = [i for i, _, _ in deliverable]
                conn.execute(text("UPDATE notifications SET status = 'grouped', channels = :channels,"
                                  " delivered_in = :group, reason = :reason WHERE id = ANY(:ids)"),
                             {"channels": list(channels), "group": group_id, "ids": member_ids,
                              "reason": f"grouped into notification {group_id} ({len(member_ids)} messages)"})
                for notification_id, message, _ in deliverable:
                    _log(conn, message, "grouped", f"sent inside grouped notification {group_id}", notification_id)
                    statuses[notification_id] = "grouped" if status == "sent" else status
            else:
                for notification_id, message, decision in deliverable:
                    statuses[notification_id] = self._apply(conn, notification_id, message, decision, channel)
        return [statuses.get(i, "duplicate") if i is not None else "duplicate" for i in ids]

    def _apply(self, conn: Connection, notification_id: int, message: Notification, decision: Decision,
               channel) -> str:
        if decision.status != "deliver":
            _finish(conn, notification_id, decision.status, decision.channels, decision.reason, 0)
            _log(conn, message, decision.status, decision.reason or decision.status, notification_id)
            return decision.status
        payload = message.payload(notification_id)
        failures, notes, attempts = [], [], 0
        for name in decision.channels:
            try:
                transport = channel(name)
                transport.deliver(notification_id, payload, conn)
                attempts = max(attempts, 1)
                if getattr(transport, "note", None):
                    notes.append(f"{name}: {transport.note}")
            except (DeliveryError, ConfigError) as err:
                tries = getattr(err, "attempts", 0)
                attempts = max(attempts, tries)
                failures.append(str(err))
                on_delivery_failure(conn, notification_id, name, str(err), tries, payload,
                                    getattr(err, "retry_at", None))
        status = "failed" if failures else "sent"
        _finish(conn, notification_id, status, decision.channels, "; ".join(failures + notes) or None, attempts)
        return status

    @contextmanager
    def _channel_cache(self) -> Iterator:
        """One transport per channel name for a whole batch (HTTP connections are reused), closed after."""
        built: dict[str, Channel] = {}

        def get(name: str) -> Channel:
            if name not in built:
                built[name] = self.channel(name)
            return built[name]

        try:
            yield get
        finally:
            for transport in built.values():
                close = getattr(transport, "close", None)
                if close:
                    close()


class _Policy:
    """The policy for one batch: controls re-read at most every second (a kill switch still stops a
    storm within a second) instead of once per message, and rate limits counted in Postgres."""

    CONTROLS_TTL_SECONDS = 1.0

    def __init__(self, notifier: NotifierResource, at: datetime, limits):
        self.routes, self.at, self.limits = notifier.routes, at, limits
        self._controls, self._read_at = None, 0.0

    def decide(self, conn: Connection, message: Notification) -> Decision:
        decision = decide(message, self._fresh_controls(conn), self.routes, self.at)
        if decision.status not in ("deliver", "held"):
            return decision
        limit = rate_limit_for(message.type, self.limits)
        if limit is None:
            return decision
        # Serialise senders of one type, so two of them cannot both see room under the limit.
        conn.execute(text("SELECT pg_advisory_xact_lock(hashtext('notify-rate:' || :type))"), {"type": message.type})
        recent = conn.execute(text(
            "SELECT count(*) FROM notifications WHERE type = :type AND status IN ('sent', 'grouped', 'held')"
            " AND created_at > CAST(:at AS timestamptz) - CAST(:window AS interval)"
        ), {"type": message.type, "at": self.at,
            "window": f"{int(limit.window.total_seconds())} seconds"}).scalar_one()
        if recent >= limit.count:
            return Decision("rate_limited", reason=f"rate limit {limit.text} for {message.type!r} reached")
        return decision

    def _fresh_controls(self, conn: Connection):
        now = time.monotonic()
        if self._controls is None or now - self._read_at > self.CONTROLS_TTL_SECONDS:
            self._controls, self._read_at = read_controls(conn), now
        return self._controls


def _group_message(message_type: str, members: list[Notification]) -> Notification:
    keys = sorted(m.dedup_key for m in members)
    digest = hashlib.sha256("\n".join(keys).encode()).hexdigest()[:24]
    severity = min((m.severity for m in members), key=list(Severity).index)
    lines = [f"- {m.title}" for m in members[:GROUP_LIST_LIMIT]]
    if len(members) > GROUP_LIST_LIMIT:
        lines.append(f"- … and {len(members) - GROUP_LIST_LIMIT} more")
    return Notification(type=message_type, severity=severity, title=f"{len(members)} × {message_type}",
                        body="\n".join(lines), dedup_key=f"group:{message_type}:{digest}",
                        meta={"grouped": len(members), "dedup_keys": keys[:GROUP_LIST_LIMIT]},
                        channels=members[0].channels, recipients=members[0].recipients)


def _claim(conn: Connection, message: Notification, at: datetime) -> int | None:
    """Record the message under its dedup key; None if another sender has or had it.

    The new row stays locked by this transaction until the message is finished, and a concurrent
    sender of the same key waits on the unique index, then gets nothing: one delivery, ever.
    """
    row = conn.execute(
        text(
            "INSERT INTO notifications (dedup_key, type, severity, title, body, status, meta, recipients,"
            " requested_channels, created_at) VALUES (:key, :type, :severity, :title, :body, 'pending',"
            " CAST(:meta AS jsonb), :recipients, :requested, :at) ON CONFLICT (dedup_key) DO NOTHING RETURNING id"
        ),
        {"at": at, "key": message.dedup_key, "type": message.type, "severity": str(message.severity),
         "title": message.title, "body": message.body, "meta": json.dumps(message.meta, default=str),
         "recipients": list(message.recipients),
         "requested": list(message.channels) if message.channels else None},
    ).first()
    return row.id if row is not None else None


def _finish(conn: Connection, notification_id: int, status: str, channels, reason: str | None, attempts: int) -> None:
    conn.execute(
        text(
            "UPDATE notifications SET status = :status, channels = :channels, reason = :reason, attempts = :attempts,"
            " sent_at = CASE WHEN :status = 'sent' THEN now() END WHERE id = :id"
        ),
        {"status": status, "channels": list(channels), "reason": reason, "attempts": attempts, "id": notification_id},
    )


def _log(conn: Connection, message: Notification, decision: str, reason: str, notification_id: int | None) -> None:
    conn.execute(
        text("INSERT INTO suppression_log (dedup_key, type, severity, decision, reason, notification_id)"
             " VALUES (:key, :type, :severity, :decision, :reason, :id)"),
        {"key": message.dedup_key, "type": message.type, "severity": str(message.severity), "decision": decision,
         "reason": reason, "id": notification_id},
    )
