"""ChannelsResource: how each channel name reaches a transport, configured from the environment.

A channel that is not configured falls back to the local outbox (the embedded default: nothing leaves
the machine) and says so in the notification's reason; with `unconfigured="error"` it is a delivery
error instead. `status()` reports every channel for `ops check`.
"""

from __future__ import annotations

import dagster as dg
from pydantic import Field

from ops_platform.notifications.channels import Channel, OutboxChannel, WebhookChannel
from ops_platform.settings import ConfigError

DEFAULT_ALIASES: dict[str, str] = {}


class ChannelsResource(dg.ConfigurableResource):
    """Secrets (webhook secret, tokens, passwords) come in as EnvVar and are never logged."""

    aliases: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ALIASES),
                                    description="Channel name → the channel that serves it, e.g. {'call': 'sms'}.")
    unconfigured: str = Field(default="outbox", description="'outbox': keep the message locally; 'error': fail.")
    webhook_url: str | None = Field(default=None, description="Generic signed webhook endpoint.")
    webhook_secret: str | None = Field(default=None, description="HMAC-SHA256 secret (EnvVar).")
    webhook_attempts: int = 3
    webhook_backoff_seconds: float = 1.0

    def channel(self, name: str) -> Channel:
        """The transport for `name`; raises ConfigError when it is unconfigured and fallback is off."""
        target = self.aliases.get(name, name)
        if target == "outbox":
            return OutboxChannel(name)
        missing = self._missing(target)
        if missing is None:
            return self._build(target, name)
        if self.unconfigured == "outbox":
            return OutboxChannel(name, note=f"{target} is not configured ({missing}); kept in the local outbox")
        raise ConfigError(f"channel {name!r} is not configured: {missing}")

    def status(self) -> dict[str, str]:
        """Every known channel: 'configured' or what is missing."""
        return {name: (self._missing(name) or "configured") for name in self.known()}

    def known(self) -> tuple[str, ...]:
        return ("outbox", "webhook")

    def _missing(self, target: str) -> str | None:
        """None when `target` can be built; else which settings are missing."""
        if target == "webhook":
            return None if (self.webhook_url and self.webhook_secret) else "set OPS_WEBHOOK_URL and OPS_WEBHOOK_SECRET"
        if target not in self.known():
            return f"unknown channel (known: {', '.join(self.known())})"
        return None

    def _build(self, target: str, name: str) -> Channel:
        if target == "webhook":
            return WebhookChannel(self.webhook_url, self.webhook_secret, self.webhook_attempts,
                                  self.webhook_backoff_seconds, name=name)
        raise ConfigError(f"channel {name!r}: no transport named {target!r}")
