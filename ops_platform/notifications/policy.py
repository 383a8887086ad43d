"""The notification policy of seed 003, as pure decisions.

- kill switch or comms disabled: suppressed (recorded, never sent later);
- routing by severity: SEV0 → call, SEV1 → SMS, WARN and INFO → the daily digest;
- quiet hours hold everything below SEV1 that would go out immediately; SEV0/SEV1 bypass them;
- rate limits per message type, e.g. `{"incident.*": "1/1h"}`: one incident message per type per hour;
- grouping: more than `group_over` messages of one type in one batch go out as one message.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import datetime, timedelta

from ops_platform.framework.controls import Controls
from ops_platform.notifications.message import Notification, Severity
from ops_platform.settings import ConfigError

DIGEST = "digest"  # not a transport: the message waits for the daily digest
DEFAULT_ROUTES: dict[str, list[str]] = {"SEV0": ["call"], "SEV1": ["sms"], "WARN": [DIGEST], "INFO": [DIGEST]}
# Seed 003: "max 1 incident per type per hour", "max 1 health alert per hour".
DEFAULT_RATE_LIMITS: dict[str, str] = {"incident.*": "1/1h", "health_alert": "1/1h"}
DEFAULT_GROUP_OVER = 20
# How the retry queue redelivers a message a channel gave up on, by type: (attempts, first wait); None: never.
# Default: 5 attempts with the queue's backoff. Seed 003: the daily digest is retried once after 5 minutes,
# then dead-lettered with an alert; the morning call is never redelivered (its job calls once more after 2
# minutes, then texts: a late call after the text would be both).
REDELIVERY: dict[str, tuple[int, timedelta] | None] = {"daily_digest": (1, timedelta(minutes=5)), "morning_call": None}
# The alert when a message of this type is dead-lettered after its redeliveries (default WARN, the digest).
# The digest's "add to DLQ and alert" is SEV1: a WARN would be routed into the digest that just failed.
DEAD_LETTER_SEVERITY: dict[str, Severity] = {"daily_digest": Severity.SEV1}

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
_LIMIT = re.compile(r"^\s*(\d+)\s*/\s*(\d*)\s*([smhd])\s*$")


@dataclass(frozen=True)
class Decision:
    status: str  # deliver | held | digest | suppressed
    channels: tuple[str, ...] = ()
    reason: str | None = None


@dataclass(frozen=True)
class RateLimit:
    count: int
    window: timedelta
    text: str


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


def parse_rate_limits(raw: dict[str, str]) -> dict[str, RateLimit]:
    """{"type" or "prefix.*": "N/window"} with window like 30s, 10m, 1h, 1d; a ConfigError otherwise."""
    limits = {}
    for pattern, spec in raw.items():
        match = _LIMIT.match(str(spec))
        if not match or int(match[1]) < 1:
            raise ConfigError(f"rate limit for {pattern!r} is {spec!r}; expected 'N/window', e.g. '1/1h' or '10/30m'")
        seconds = int(match[2] or 1) * _UNITS[match[3]]
        limits[pattern] = RateLimit(int(match[1]), timedelta(seconds=seconds), str(spec).strip())
    return limits


def rate_limit_for(message_type: str, limits: dict[str, RateLimit]) -> RateLimit | None:
    """The exact type's limit, else the longest matching `prefix.*` pattern. Counted per exact type."""
    if message_type in limits:
        return limits[message_type]
    prefixes = [p for p in limits if p.endswith("*") and message_type.startswith(p[:-1])]
    return limits[max(prefixes, key=len)] if prefixes else None
