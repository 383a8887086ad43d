"""NotifierResource: the one way any job sends a message."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import dagster as dg
from pydantic import Field
from sqlalchemy import Connection, text

from ops_platform.framework.controls import read_controls
from ops_platform.framework.dead_letters import dead_letter
from ops_platform.notifications.channels import Channel, DeliveryError, OutboxChannel, WebhookChannel
from ops_platform.notifications.message import Notification
from ops_platform.notifications.policy import DEFAULT_ALIASES, DEFAULT_ROUTES, decide
from ops_platform.resources.postgres import PostgresResource
from ops_platform.settings import ConfigError


class NotifierResource(dg.ConfigurableResource):
    """Dedup, policy and delivery. Channel secrets come from EnvVar and never reach logs or metadata."""

    postgres: PostgresResource
    routes: dict[str, list[str]] = Field(default_factory=lambda: dict(DEFAULT_ROUTES),
                                         description="Severity → channel names ('digest' waits for the daily digest).")
    aliases: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ALIASES),
                                    description="Channel names served by another channel until configured.")
    webhook_url: str | None = Field(default=None, description="Generic signed webhook endpoint.")
    webhook_secret: str | None = Field(default=None, description="HMAC-SHA256 secret (EnvVar).")
    webhook_attempts: int = 3
    webhook_backoff_seconds: float = 1.0

    def send(self, message: Notification, at: datetime | None = None) -> str:
        """Deliver `message` once; returns the recorded status, or 'duplicate' if its key was seen."""
        at = at or datetime.now(UTC)
        with self.postgres.begin() as conn:
            notification_id = _claim(conn, message)
            if notification_id is None:
                return "duplicate"
            decision = decide(message, read_controls(conn), self.routes, at)
            if decision.status != "deliver":
                _finish(conn, notification_id, decision.status, decision.channels, decision.reason, 0)
                return decision.status
            payload = message.payload(notification_id)
            failures, attempts = [], 0
            for name in decision.channels:
                try:
                    self.channel(name).deliver(notification_id, payload, conn)
                    attempts = max(attempts, 1)
                except (DeliveryError, ConfigError) as err:
                    tries = getattr(err, "attempts", 0)
                    attempts = max(attempts, tries)
                    failures.append(str(err))
                    dead_letter(conn, source=f"notify:{name}", dedup_key=f"notification:{notification_id}:{name}",
                                error=str(err), attempts=tries, payload=payload)
            status = "failed" if failures else "sent"
            _finish(conn, notification_id, status, decision.channels, "; ".join(failures) or None, attempts)
            return status

    def channel(self, name: str) -> Channel:
        target = self.aliases.get(name, name)
        if target == "outbox":
            return OutboxChannel(name)
        if target == "webhook":
            if not (self.webhook_url and self.webhook_secret):
                raise ConfigError(f"channel {name!r} is not configured: set OPS_WEBHOOK_URL and OPS_WEBHOOK_SECRET")
            return WebhookChannel(self.webhook_url, self.webhook_secret, self.webhook_attempts,
                                  self.webhook_backoff_seconds, name=name)
        raise ConfigError(f"channel {name!r} is not configured (known: outbox, webhook; aliases {self.aliases})")


def _claim(conn: Connection, message: Notification) -> int | None:
    """Record the message under its dedup key and lock it; None if another sender has or had it."""
    conn.execute(
        text(
            "INSERT INTO notifications (dedup_key, type, severity, title, body, status, meta)"
            " VALUES (:key, :type, :severity, :title, :body, 'pending', CAST(:meta AS jsonb))"
            " ON CONFLICT (dedup_key) DO NOTHING"
        ),
        {"key": message.dedup_key, "type": message.type, "severity": str(message.severity),
         "title": message.title, "body": message.body, "meta": json.dumps(message.meta, default=str)},
    )
    row = conn.execute(
        text("SELECT id, status FROM notifications WHERE dedup_key = :key FOR UPDATE SKIP LOCKED"),
        {"key": message.dedup_key},
    ).first()
    return row.id if row is not None and row.status == "pending" else None


def _finish(conn: Connection, notification_id: int, status: str, channels, reason: str | None, attempts: int) -> None:
    conn.execute(
        text(
            "UPDATE notifications SET status = :status, channels = :channels, reason = :reason, attempts = :attempts,"
            " sent_at = CASE WHEN :status = 'sent' THEN now() END WHERE id = :id"
        ),
        {"status": status, "channels": list(channels), "reason": reason, "attempts": attempts, "id": notification_id},
    )
