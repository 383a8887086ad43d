"""Chat channels: Slack and Microsoft Teams incoming webhooks, Telegram bot messages.

The webhook URL (Slack, Teams) and the bot token (Telegram) are secrets: they are held here and
never appear in an error text, so never in the notifications or dead_letters rows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection

from ops_platform.outbound.http import RetryingHttp

TELEGRAM_TEXT_LIMIT = 4096  # characters per Telegram message
SEVERITY_COLOURS = {"SEV0": "attention", "SEV1": "warning", "WARN": "warning", "INFO": "default"}


def headline(payload: dict[str, Any]) -> str:
    return f"[{payload['severity']}] {payload['title']}"


class SlackChannel:
    """Slack incoming webhook: POST {"text": ...} (mrkdwn, headline in bold)."""

    def __init__(self, webhook_url: str, name: str = "slack", secrets: Sequence[str] = (), **retry: Any):
        self.name, self._url = name, webhook_url
        self._http = RetryingHttp(name, secrets=[webhook_url, *secrets], **retry)

    def deliver(self, notification_id: int, payload: dict[str, Any], conn: Connection) -> None:
        body = payload.get("body") or ""
        self._http.post(self._url, json={"text": f"*{headline(payload)}*" + (f"\n{body}" if body else "")})

    def close(self) -> None:
        self._http.close()


class TeamsChannel:
    """Microsoft Teams incoming webhook (Workflows): a message with one Adaptive Card attachment."""

    def __init__(self, webhook_url: str, name: str = "teams", secrets: Sequence[str] = (), **retry: Any):
        self.name, self._url = name, webhook_url
        self._http = RetryingHttp(name, secrets=[webhook_url, *secrets], **retry)

    def deliver(self, notification_id: int, payload: dict[str, Any], conn: Connection) -> None:
        self._http.post(self._url, json=adaptive_card(payload))

    def close(self) -> None:
        self._http.close()


def adaptive_card(payload: dict[str, Any]) -> dict[str, Any]:
    blocks: list[dict[str, Any]] = [{"type": "TextBlock", "text": headline(payload), "weight": "Bolder",
                                     "size": "Medium", "wrap": True,
                                     "color": SEVERITY_COLOURS.get(payload["severity"], "default")}]
    if payload.get("body"):
        blocks.append({"type": "TextBlock", "text": payload["body"], "wrap": True})
    return {"type": "message", "attachments": [{
        "contentType": "application/vnd.microsoft.card.adaptive", "contentUrl": None,
        "content": {"$schema": "http://adaptivecards.io/schemas/adaptive-card.json", "type": "AdaptiveCard",
                    "version": "1.4", "body": blocks},
    }]}


class TelegramChannel:
    """Telegram bot: POST {api}/bot<token>/sendMessage {chat_id, text}, text trimmed to Telegram's limit."""

    def __init__(self, bot_token: str, chat_id: str, api_url: str = "https://api.telegram.org",
                 name: str = "telegram", secrets: Sequence[str] = (), **retry: Any):
        self.name, self.chat_id = name, chat_id
        self._url = f"{api_url.rstrip('/')}/bot{bot_token}/sendMessage"
        self._http = RetryingHttp(name, secrets=[bot_token, *secrets], **retry)

    def deliver(self, notification_id: int, payload: dict[str, Any], conn: Connection) -> None:
        message = headline(payload) + (f"\n{payload['body']}" if payload.get("body") else "")
        if len(message) > TELEGRAM_TEXT_LIMIT:
            message = message[:TELEGRAM_TEXT_LIMIT - 1] + "…"
        self._http.post(self._url, json={"chat_id": self.chat_id, "text": message,
                                         "disable_web_page_preview": True})

    def close(self) -> None:
        self._http.close()
