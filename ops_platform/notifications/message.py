"""The one message type: built by a sender, carried in a run's config, stored as a `notifications` row.

`Notification` is a Dagster Config (a frozen pydantic model), so the same class is what a sensor puts
in a run request (`model_dump(mode="json")`), what the run's config holds, and what `from_row`
rebuilds from Postgres: no second shape to keep in step.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum
from typing import Any

import dagster as dg


class Severity(StrEnum):
    SEV0 = "SEV0"  # page: a call
    SEV1 = "SEV1"  # urgent: an SMS
    WARN = "WARN"  # the daily digest
    INFO = "INFO"  # the daily digest

    @property
    def bypasses_quiet_hours(self) -> bool:
        return self in (Severity.SEV0, Severity.SEV1)


class Notification(dg.Config, frozen=True):
    """One message. `dedup_key` names the event: the same key is delivered at most once, ever."""

    type: str
    severity: Severity
    title: str
    body: str
    dedup_key: str
    meta: dict[str, Any] = {}
    channels: list[str] | None = None  # None: route by severity
    recipients: list[str] = []  # addresses/numbers for email, SMS, call; empty: the channel's default

    @classmethod
    def from_row(cls, row: Mapping[str, Any]) -> Notification:
        """The message of a `notifications` row (a mapping: `.mappings()` of `SELECT *`)."""
        return cls(type=row["type"], severity=Severity(row["severity"]), title=row["title"], body=row["body"],
                   dedup_key=row["dedup_key"], meta=row["meta"] or {}, recipients=list(row["recipients"] or []),
                   channels=list(row["requested_channels"]) if row["requested_channels"] else None)

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
