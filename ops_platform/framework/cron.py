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

from croniter import CroniterError, croniter

from ops_platform.settings import ConfigError, cron_problem


class ScheduleError(ConfigError):
    """A row's cron or time zone is wrong; the message is written to the row's last_error."""


def zone(name: str) -> ZoneInfo:
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError, TypeError):
        raise ScheduleError(f"time zone {name!r} is not an IANA time zone (e.g. 'America/Chicago' or 'UTC')") from None


def validate(cron: str, timezone: str) -> None:
    """Raise ScheduleError naming what is wrong: an unknown time zone, not five cron fields (like every
    schedule here), or a cron that never fires ('0 0 31 2 *'); a rare one that fires ('0 0 29 2 *') passes."""
    zone(timezone)
    problem = cron_problem(cron, "0 8 * * 1-5")
    if problem:
        raise ScheduleError(f"cron {cron!r} {problem}")


def next_after(cron: str, timezone: str, after: datetime) -> datetime:
    """The first cron time strictly after `after` (aware), as a UTC datetime; ScheduleError when there is none."""
    validate(cron, timezone)
    tz = zone(timezone)
    fixed_hours = cron.split()[1] != "*"
    try:
        candidate = croniter(cron, after.astimezone(tz)).get_next(datetime)
        while candidate <= after or (fixed_hours and _repeated_wall_time(candidate, tz)):
            candidate = croniter(cron, candidate).get_next(datetime)
    except CroniterError as err:
        raise ScheduleError(f"cron {cron!r} has no time after {after.isoformat()}: {err}") from None
    return candidate.astimezone(UTC)


def _repeated_wall_time(at: datetime, tz: ZoneInfo) -> bool:
    """True for the second occurrence of a local time in the hour a fall-back repeats."""
    wall = at.astimezone(tz).replace(tzinfo=None)
    return wall.replace(tzinfo=tz, fold=0).astimezone(UTC) != at.astimezone(UTC)
