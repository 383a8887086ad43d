"""The campaign state machine (seed 004 auto-transition), from dates, capacity and utilisation.

    draft ──(a person schedules it)──▶ scheduled ──(starts_on reached)──▶ active ⇄ at_capacity
                                            │                               │          │
                                            └────────(ends_on passed)───────┴──────────┴──▶ completed

- draft is never moved automatically; completed is final.
- any scheduled, active or at_capacity campaign whose ends_on has passed becomes completed;
- scheduled becomes active on its start date;
- active becomes at_capacity when every seat is taken or the credit budget is spent
  (a budget of 0 means no credit limit), and returns to active when that is no longer true.

People make the other moves (MANUAL): schedule a draft, take a scheduled campaign back to draft,
or close a running campaign early.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from decimal import Decimal


@dataclass(frozen=True)
class Campaign:
    status: str
    starts_on: date
    ends_on: date
    seats_used: int
    seat_capacity: int
    credits_used: Decimal
    credit_budget: Decimal

    def full(self) -> str | None:
        if self.seats_used >= self.seat_capacity:
            return f"all {self.seat_capacity} seats taken"
        if self.credit_budget > 0 and self.credits_used >= self.credit_budget:
            return f"credit budget {self.credit_budget} spent"
        return None


def next_status(c: Campaign, today: date) -> tuple[str, str] | None:
    """(new status, reason) for one step, or None when the campaign stays as it is."""
    if c.status in ("draft", "completed"):
        return None
    if today > c.ends_on:
        return "completed", f"ended on {c.ends_on}"
    if c.status == "scheduled":
        return ("active", f"started on {c.starts_on}") if today >= c.starts_on else None
    full = c.full()
    if c.status == "active" and full:
        return "at_capacity", full
    if c.status == "at_capacity" and not full:
        return "active", "capacity available again"
    return None


def transitions(c: Campaign, today: date) -> list[tuple[str, str, str]]:
    """Every step until the campaign is stable: [(from, to, reason)], e.g. scheduled → active → at_capacity."""
    steps = []
    while (step := next_status(c, today)) is not None:
        steps.append((c.status, *step))
        c = Campaign(step[0], c.starts_on, c.ends_on, c.seats_used, c.seat_capacity, c.credits_used, c.credit_budget)
    return steps


MANUAL = {
    ("draft", "scheduled"): "scheduled",
    ("scheduled", "draft"): "taken back to draft",
    ("scheduled", "completed"): "closed early",
    ("active", "completed"): "closed early",
    ("at_capacity", "completed"): "closed early",
}


def manual_step(current: str, target: str) -> str:
    """The reason for a move a person asked for; ValueError naming the allowed moves otherwise."""
    if (current, target) in MANUAL:
        return MANUAL[(current, target)]
    allowed = sorted(to for frm, to in MANUAL if frm == current)
    raise ValueError(f"a {current} campaign cannot be set to {target!r} by hand"
                     + (f"; allowed: {', '.join(allowed)}" if allowed else "; it is final"))
