from __future__ import annotations

from dataclasses import dataclass, field
from enum import StrEnum
from typing import Any


class Severity(StrEnum):
    SEV0 = "SEV0"  # page: a call
    SEV1 = "SEV1"  # urgent: an SMS
    WARN = "WARN"  # the daily digest
    INFO = "INFO"  # the daily digest

    @property
    def bypasses_quiet_hours(self) -> bool:
        return self in (Severity.SEV0, Severity.SEV1)


@dataclass(frozen=True)
class Notification:
    """One message. `dedup_key` names the event: the same key is delivered at most once, ever."""

    type: str
    severity: Severity
    title: str
    body: str
    dedup_key: str
    meta: dict[str, Any] = field(default_factory=dict)
    channels: tuple[str, ...] | None = None  # None: route by severity
    recipients: tuple[str, ...] = ()  # addresses/numbers for email, SMS, call; empty: the channel's default

    def payload(self, notification_id: int) -> dict[str, Any]:
        return {
            "id": notification_id,
            "dedup_key": self.dedup_key,
            "type": self.type,
            "severity": str(self.severity),
            "title": self.title,
            "body": self.body,
            "meta": self.meta,
            "recipients": list(self.recipients),
        }
