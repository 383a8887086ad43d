"""ChannelsResource: how each channel name reaches a transport, configured from the environment.

A channel that is not configured falls back to the local outbox (the embedded default: nothing leaves
the machine) and says so in the notification's reason; with `unconfigured="error"` it is a delivery
error instead. `status()` reports every channel for `ops check`, naming missing env vars, never a value.
"""

from __future__ import annotations

from typing import Any

import dagster as dg
from pydantic import Field
from sqlalchemy import Connection

from ops_platform.notifications.channels import Channel, OutboxChannel
from ops_platform.notifications.chat import SlackChannel, TeamsChannel, TelegramChannel
from ops_platform.notifications.email import ApiEmailSender, EmailChannel, EmailSender, OutboxEmailSender, SmtpSender
from ops_platform.notifications.twilio import CallChannel, SmsChannel
from ops_platform.notifications.webhook import WebhookChannel
from ops_platform.settings import ConfigError

DEFAULT_ALIASES: dict[str, str] = {}
CHANNELS = ("outbox", "webhook", "email", "slack", "teams", "telegram", "sms", "call")

# Field → the environment variable that fills it (resources.build_channels); named in status and errors.
ENV_VARS = {
    "webhook_url": "OPS_WEBHOOK_URL", "webhook_secret": "OPS_WEBHOOK_SECRET",
    "smtp_host": "OPS_SMTP_HOST", "email_api_url": "OPS_EMAIL_API_URL", "email_api_key": "OPS_EMAIL_API_KEY",
    "email_to": "OPS_EMAIL_TO", "slack_webhook_url": "OPS_SLACK_WEBHOOK_URL",
    "teams_webhook_url": "OPS_TEAMS_WEBHOOK_URL", "telegram_bot_token": "OPS_TELEGRAM_BOT_TOKEN",
    "telegram_chat_id": "OPS_TELEGRAM_CHAT_ID", "twilio_account_sid": "OPS_TWILIO_ACCOUNT_SID",
    "twilio_auth_token": "OPS_TWILIO_AUTH_TOKEN", "twilio_from": "OPS_TWILIO_FROM", "twilio_to": "OPS_TWILIO_TO",
}
REQUIRED = {
    "webhook": ("webhook_url", "webhook_secret"),
    "slack": ("slack_webhook_url",),
    "teams": ("teams_webhook_url",),
    "telegram": ("telegram_bot_token", "telegram_chat_id"),
    "sms": ("twilio_account_sid", "twilio_auth_token", "twilio_from"),
    "call": ("twilio_account_sid", "twilio_auth_token", "twilio_from"),
}
SECRET_FIELDS = ("webhook_secret", "smtp_password", "email_api_key", "slack_webhook_url", "teams_webhook_url",
                 "telegram_bot_token", "twilio_auth_token")
DEFAULT_RECIPIENTS = {"email": "email_to", "sms": "twilio_to", "call": "twilio_to"}


class ChannelsResource(dg.ConfigurableResource):
    """Secrets (webhook secret and URLs, tokens, passwords, API keys) come in as EnvVar and are never logged."""

    aliases: dict[str, str] = Field(default_factory=lambda: dict(DEFAULT_ALIASES),
                                    description="Channel name → the channel that serves it, e.g. {'call': 'sms'}.")
    unconfigured: str = Field(default="outbox", description="'outbox': keep the message locally; 'error': fail.")
    webhook_url: str | None = Field(default=None, description="Generic signed webhook endpoint.")
    webhook_secret: str | None = Field(default=None, description="HMAC-SHA256 secret (EnvVar).")
    webhook_attempts: int = 3
    webhook_backoff_seconds: float = 1.0

    smtp_host: str | None = None
    smtp_port: int = 587
    smtp_username: str | None = None
    smtp_password: str | None = Field(default=None, description="EnvVar.")
    smtp_starttls: bool = True
    email_from: str = "ops@localhost"
    email_to: list[str] = Field(default_factory=list, description="Default recipients of the email channel.")
    email_api_url: str | None = Field(default=None, description="Resend-shaped API, e.g. https://api.resend.com.")
    email_api_key: str | None = Field(default=None, description="EnvVar.")
    slack_webhook_url: str | None = Field(default=None, description="EnvVar: the URL embeds a secret.")
    teams_webhook_url: str | None = Field(default=None, description="EnvVar: the URL embeds a secret.")
    telegram_bot_token: str | None = Field(default=None, description="EnvVar.")
    telegram_chat_id: str | None = None
    telegram_api_url: str = "https://api.telegram.org"
    twilio_account_sid: str | None = None
    twilio_auth_token: str | None = Field(default=None, description="EnvVar.")
    twilio_from: str | None = None
    twilio_to: str | None = Field(default=None, description="Default phone number(s), comma-separated, E.164.")
    twilio_api_url: str = "https://api.twilio.com"
    twilio_status_callback: str | None = Field(default=None, description=(
        "StatusCallback URL sent with each SMS (Twilio then posts its delivery statuses there): "
        "OPS_API_PUBLIC_URL + the `ops api` Twilio route when that is set."))

    delivery_attempts: int = Field(default=3, description="Tries per message for the provider channels.")
    delivery_backoff_seconds: float = 1.0
    delivery_timeout_seconds: float = 10.0

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

    def email_sender(self, conn: Connection) -> EmailSender:
        """SMTP when smtp_host is set, else the email API, else the outbox (or ConfigError in 'error' mode).
        The caller closes it after the batch."""
        missing = self._missing("email")
        if missing is None:
            return self._email_transport()
        if self.unconfigured == "outbox":
            return OutboxEmailSender(conn, self.email_from,
                                     note=f"email is not configured ({missing}); kept in the local outbox")
        raise ConfigError(f"email is not configured: {missing}")

    def status(self) -> dict[str, str]:
        """Every known channel: 'configured' (with a note when it has no default recipients) or what is missing."""
        report = {}
        for name in self.known():
            missing = self._missing(name)
            if missing:
                report[name] = missing
            elif name in DEFAULT_RECIPIENTS and not getattr(self, DEFAULT_RECIPIENTS[name]):
                report[name] = (f"configured; no default recipients (set {ENV_VARS[DEFAULT_RECIPIENTS[name]]}"
                                " or give each message recipients)")
            else:
                report[name] = "configured"
        return report

    def known(self) -> tuple[str, ...]:
        return CHANNELS

    def _missing(self, target: str) -> str | None:
        """None when `target` can be built; else which environment variables to set."""
        if target == "outbox":
            return None
        if target == "email":
            if self.smtp_host or (self.email_api_url and self.email_api_key):
                return None
            if self.email_api_url:
                return "set OPS_EMAIL_API_KEY"
            return "set OPS_SMTP_HOST, or OPS_EMAIL_API_URL and OPS_EMAIL_API_KEY"
        if target not in REQUIRED:
            return f"unknown channel (known: {', '.join(self.known())})"
        unset = [ENV_VARS[f] for f in REQUIRED[target] if not getattr(self, f)]
        return f"set {' and '.join(unset)}" if unset else None

    def _retry(self) -> dict[str, Any]:
        return {"attempts": self.delivery_attempts, "backoff_seconds": self.delivery_backoff_seconds,
                "timeout_seconds": self.delivery_timeout_seconds}

    def _http_options(self) -> dict[str, Any]:
        """Every secret of every channel is blanked from provider replies kept in errors, whoever echoes it."""
        secrets = [getattr(self, f) for f in SECRET_FIELDS if getattr(self, f)]
        return self._retry() | {"secrets": secrets}

    def _email_transport(self) -> EmailSender:
        if self.smtp_host:
            return SmtpSender(self.smtp_host, self.smtp_port, self.smtp_username, self.smtp_password,
                              self.smtp_starttls, self.email_from, **self._retry())
        return ApiEmailSender(self.email_api_url, self.email_api_key, self.email_from, **self._http_options())

    def _build(self, target: str, name: str) -> Channel:
        if target == "webhook":
            return WebhookChannel(self.webhook_url, self.webhook_secret, self.webhook_attempts,
                                  self.webhook_backoff_seconds, name=name)
        if target == "email":
            return EmailChannel(self._email_transport(), self.email_to, name=name)
        if target == "slack":
            return SlackChannel(self.slack_webhook_url, name=name, **self._http_options())
        if target == "teams":
            return TeamsChannel(self.teams_webhook_url, name=name, **self._http_options())
        if target == "telegram":
            return TelegramChannel(self.telegram_bot_token, self.telegram_chat_id, self.telegram_api_url,
                                   name=name, **self._http_options())
        if target in ("sms", "call"):
            numbers = [n.strip() for n in (self.twilio_to or "").split(",") if n.strip()]
            if target == "call":
                return CallChannel(self.twilio_account_sid, self.twilio_auth_token, self.twilio_from, numbers,
                                   self.twilio_api_url, name=name, **self._http_options())
            return SmsChannel(self.twilio_account_sid, self.twilio_auth_token, self.twilio_from, numbers,
                              self.twilio_api_url, name=name, status_callback=self.twilio_status_callback,
                              **self._http_options())
        raise ConfigError(f"channel {name!r}: no transport named {target!r}")
