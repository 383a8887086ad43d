"""Intervals in minutes (seed 003's `*_interval_minutes` settings) as cron strings, validated at load.

An interval becomes the cron that fires every N minutes from the top of the hour (N divides 60), or
every H hours from midnight (N = 60·H, H divides 24). Any other N would drift against the clock, so it
is refused when the code location loads, with one sentence naming the variable and the values that work.
"""

from __future__ import annotations

import os

from ops_platform.settings import ConfigError

_MINUTES = [m for m in range(1, 61) if 60 % m == 0]
_HOURS = [h for h in range(1, 25) if 24 % h == 0]


def interval_cron(minutes: int) -> str:
    """`*/N * * * *`, `0 * * * *` or `0 */H * * *`; ValueError for an interval the clock cannot repeat."""
    if minutes in _MINUTES:
        return "0 * * * *" if minutes == 60 else f"*/{minutes} * * * *"
    if minutes % 60 == 0 and minutes // 60 in _HOURS:
        hours = minutes // 60
        return "0 0 * * *" if hours == 24 else f"0 */{hours} * * *"
    raise ValueError(f"{minutes} minutes does not divide the hour or the day evenly; use one of "
                     f"{', '.join(map(str, _MINUTES))} minutes or {', '.join(str(60 * h) for h in _HOURS)}")


def interval_from_env(var: str, default_minutes: int) -> tuple[int, str]:
    """(minutes, cron) from `var` (a whole number of minutes), or the default; ConfigError naming `var`."""
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default_minutes, interval_cron(default_minutes)
    if not raw.isdigit() or int(raw) < 1:
        raise ConfigError(f"{var} must be a whole number of minutes above 0, got {raw!r}")
    try:
        return int(raw), interval_cron(int(raw))
    except ValueError as err:
        raise ConfigError(f"{var}={raw!r}: {err}") from None


def seconds_from_env(var: str, default_seconds: int, minimum: int = 1) -> int:
    """A whole number of seconds ≥ `minimum` from `var` (e.g. retry_queue.checkIntervalSeconds), or the default."""
    raw = os.environ.get(var, "").strip()
    if not raw:
        return default_seconds
    if not raw.isdigit() or int(raw) < minimum:
        raise ConfigError(f"{var} must be a whole number of seconds, at least {minimum}, got {raw!r}")
    return int(raw)


def daily_at_from_env(var: str, default: str) -> str:
    """A daily cron ("M H * * *") from a time of day HH:MM in `var` (e.g. jobs.daily_digest.time = 08:00)."""
    raw = os.environ.get(var, "").strip() or default
    hour, _, minute = raw.partition(":")
    if not (hour.isdigit() and minute.isdigit() and len(minute) == 2 and int(hour) < 24 and int(minute) < 60):
        raise ConfigError(f"{var} must be a time of day HH:MM (00:00 to 23:59), e.g. {default}, got {raw!r}")
    return f"{int(minute)} {int(hour)} * * *"
