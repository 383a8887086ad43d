"""Cron maths for rows that carry their own cron and time zone.

Times are wall-clock times in the row's zone, so "0 8 * * *" in America/Chicago is 08:00 local on
both sides of a DST change (13:00 UTC in summer, 14:00 UTC in winter). croniter does the DST work:
a time skipped by spring-forward fires at the first valid time after it. In the hour repeated by a
fall-back, a cron with fixed hours ("30 1 * * *") fires once, at the first occurrence, as Dagster's
own schedules do; an every-hour cron ("*/15 * * * *") fires in both occurrences, as time goes on.
"""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from croniter import croniter

from ops_platform.settings import ConfigError


class ScheduleError(ConfigError):
    """A row's cron or time zone is wrong; the message is written to the row's last_error."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError(f"time zone {name!r} is not an IANA time zone (e.g. 'America/Chicago' or 'UTC')") from None


def validate(cron: str, timezone: str) -> None:
    """Raise ScheduleError naming what is wrong; five cron fields only, like every schedule here."""
    zone(timezone)
    if not isinstance(cron, str) or len(cron.split()) != 5 or not croniter.is_valid(cron):
        raise ScheduleError(
            f"cron {cron!r} is not a valid cron expression; expected five fields "
            "(minute hour day-of-month month day-of-week), e.g. '0 8 * * 1-5'"
        )


def next_after(cron: str, timezone: str, after: datetime) -> datetime:
    """The first cron time strictly after `after` (aware), as a UTC datetime."""
    validate(cron, timezone)
    tz = zone(timezone)
    fixed_hours = cron.split()[1] != "*"
    candidate = croniter(cron, after.astimezone(tz)).get_next(datetime)
    while candidate <= after or (fixed_hours and _repeated_wall_time(candidate, tz)):
        candidate = croniter(cron, candidate).get_next(datetime)
    return candidate.astimezone(UTC)


def _repeated_wall_time(at: datetime, tz: ZoneInfo) -> bool:
    """True for the second occurrence of a local time in the hour a fall-back repeats."""
    wall = at.astimezone(tz).replace(tzinfo=None)
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC) != at.astimezone(UTC)
