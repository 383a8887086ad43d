"""The notification policy of seed 003, as one pure decision per message.

- kill switch or comms disabled: suppressed (recorded, never sent later);
- routing by severity: SEV0 → call, SEV1 → SMS, WARN and INFO → the daily digest;
- quiet hours hold everything below SEV1 that would go out immediately; SEV0/SEV1 bypass them.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from ops_platform.framework.controls import Controls
from ops_platform.notifications.message import Notification

DIGEST = "digest"  # not a transport: the message waits for the daily digest
DEFAULT_ROUTES: dict[str, list[str]] = {"SEV0": ["call"], "SEV1": ["sms"], "WARN": [DIGEST], "INFO": [DIGEST]}
# Logical channels served by a configured transport; until one is configured, the local outbox.
DEFAULT_ALIASES: dict[str, str] = {"call": "outbox", "sms": "outbox"}


@dataclass(frozen=True)
class Decision:
    status: str  # deliver | held | digest | suppressed
    channels: tuple[str, ...] = ()
    reason: str | None = None


def decide(message: Notification, controls: Controls, routes: dict[str, list[str]], at: datetime) -> Decision:
    if controls.kill_switch:
        return Decision("suppressed", reason="the kill switch is on")
    if not controls.comms_enabled:
        return Decision("suppressed", reason="communications are disabled (comms_enabled = false)")
    channels = tuple(message.channels or routes.get(str(message.severity), [DIGEST]))
    immediate = tuple(c for c in channels if c != DIGEST)
    if not immediate:
        return Decision(DIGEST, reason="routed to the daily digest")
    if controls.in_quiet_hours(at) and not message.severity.bypasses_quiet_hours:
        return Decision("held", channels=immediate, reason="quiet hours")
    return Decision("deliver", channels=immediate)
