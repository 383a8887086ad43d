"""Controls in Postgres: kill switch, jobs/comms/write switches, quiet hours with a time zone.

A job declares the controls it obeys ("gates") once, in its op tags. Schedules and sensors check
the same gates before they launch anything and return a SkipReason naming the control; a run
launched by hand checks them in its first step and fails with the same sentence. Both are
recorded in the audit log.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass, fields
from datetime import UTC, datetime, time
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy import Connection, text

GATES_TAG = "ops/gates"
KILL_SWITCH, JOBS, WRITE, COMMS, QUIET_HOURS = "kill_switch", "jobs", "write", "comms", "quiet_hours"
ALL_GATES = (KILL_SWITCH, JOBS, WRITE, COMMS, QUIET_HOURS)

READ_JOB = (KILL_SWITCH, JOBS)
WRITE_JOB = (KILL_SWITCH, JOBS, WRITE)
NOTIFY_JOB = (KILL_SWITCH, JOBS, WRITE, COMMS)
# Seed 003 beforeJobExecution: a non-emergency job also waits out quiet hours (the periodic scan, the source
# syncs). Jobs at a time of day someone chose (cleanup 02:00, morning call 06:00, digest 08:00) do not: quiet
# hours covering that time would cancel them for good; the messages they send still obey quiet hours.
NON_EMERGENCY_JOB = (KILL_SWITCH, JOBS, WRITE, QUIET_HOURS)
ALWAYS_RUNS: tuple[str, ...] = ()  # the health monitor: it reports the switches, it does not obey them

_HOW_TO_FIX = {
    KILL_SWITCH: "ops controls kill-switch off",
    JOBS: "ops controls jobs on",
    WRITE: "ops controls writes on",
    COMMS: "ops controls comms on",
    QUIET_HOURS: "wait for quiet hours to end, or ops controls quiet-hours off",
}

# The controls are one row (id = 1); `columns` are the fields of Controls, `assignments` "name = :name, ...".
READ_CONTROLS_SQL = "SELECT {columns} FROM controls WHERE id = 1"
SET_CONTROLS_SQL = "UPDATE controls SET {assignments}, updated_at = now(), updated_by = :by WHERE id = 1"


def gate_tags(gates: Iterable[str]) -> dict[str, str]:
    gates = tuple(gates)
    unknown = set(gates) - set(ALL_GATES)
    if unknown:
        raise ValueError(f"unknown gates {sorted(unknown)}; known: {ALL_GATES}")
    return {GATES_TAG: ",".join(gates) or "none"}


def gates_from_tags(tags: Mapping[str, str]) -> tuple[str, ...]:
    raw = tags.get(GATES_TAG)
    if raw is None:
        return READ_JOB
    return () if raw == "none" else tuple(raw.split(","))


@dataclass(frozen=True)
class Controls:
    kill_switch: bool = False
    jobs_enabled: bool = True
    comms_enabled: bool = True
    write_enabled: bool = True
    quiet_hours_start: time | None = None
    quiet_hours_end: time | None = None
    quiet_hours_tz: str = "America/Chicago"

    def in_quiet_hours(self, at: datetime) -> bool:
        """Quiet hours are wall-clock times in their own zone, so they follow DST changes."""
        if self.quiet_hours_start is None or self.quiet_hours_end is None:
            return False
        local = at.astimezone(ZoneInfo(self.quiet_hours_tz)).time()
        start, end = self.quiet_hours_start, self.quiet_hours_end
        if start == end:  # an empty window, not a whole day
            return False
        return start <= local < end if start < end else (local >= start or local < end)

    def blocked_by(self, gates: Iterable[str], at: datetime | None = None) -> str | None:
        """The first control that stops work with these gates, as a sentence; None when all clear."""
        gates = set(gates)
        at = at or datetime.now(UTC)
        if KILL_SWITCH in gates and self.kill_switch:
            return "the kill switch is on"
        if JOBS in gates and not self.jobs_enabled:
            return "jobs are disabled (jobs_enabled = false)"
        if WRITE in gates and not self.write_enabled:
            return "writes are disabled (write_enabled = false)"
        if COMMS in gates and not self.comms_enabled:
            return "communications are disabled (comms_enabled = false)"
        if QUIET_HOURS in gates and self.in_quiet_hours(at):
            return f"it is quiet hours ({self.quiet_hours_start:%H:%M}-{self.quiet_hours_end:%H:%M} {self.quiet_hours_tz})"
        return None

    def how_to_fix(self, reason: str) -> str:
        for gate, fix in _HOW_TO_FIX.items():
            if self.blocked_by([gate]) == reason:
                return fix
        return "check `ops controls show`"


_COLUMNS = [f.name for f in fields(Controls)]


def read_controls(conn: Connection) -> Controls:
    row = conn.execute(text(READ_CONTROLS_SQL.format(columns=", ".join(_COLUMNS)))).mappings().one()
    return Controls(**row)


def set_controls(conn: Connection, changed_by: str, **changes) -> Controls:
    """Change controls and audit the change (who, what)."""
    unknown = set(changes) - set(_COLUMNS)
    if unknown:
        raise ValueError(f"unknown controls {sorted(unknown)}")
    if "quiet_hours_tz" in changes:
        try:  # before anything is written
            ZoneInfo(changes["quiet_hours_tz"])
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(f"{changes['quiet_hours_tz']!r} is not a time zone (e.g. America/Chicago)") from None
    assignments = ", ".join(f"{name} = :{name}" for name in changes)
    conn.execute(text(SET_CONTROLS_SQL.format(assignments=assignments)), {**changes, "by": changed_by})
    from ops_platform.framework.audit import record

    record(conn, action="controls", action_type="control", success=True,
           output={k: str(v) for k, v in changes.items()} | {"by": changed_by})
    return read_controls(conn)
