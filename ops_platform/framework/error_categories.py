"""Seed 003's error categories: what each kind of failure gets (retry, alert severity), written once.

| category      | examples                        | retry                               | alert                          |
|---------------|---------------------------------|-------------------------------------|--------------------------------|
| transient     | network, timeout                | backoff                             | INFO, WARN after 3 failures    |
| auth          | 401, 403, refused credentials   | never                               | WARN at once                   |
| validation    | a malformed answer, bad input   | never (log and skip)                | INFO                           |
| external_api  | 429, 5xx, other provider errors | backoff, within the rate limits     | WARN after 3 failures          |
| database      | Postgres unreachable, deadlock  | once                                | WARN if persistent             |
| kill_switch   | a control refused the work      | never (skipped, logged)             | INFO                           |
"""

from __future__ import annotations

from dataclasses import dataclass

from ops_platform.notifications import Severity

TRANSIENT, AUTH, VALIDATION, EXTERNAL_API, DATABASE, KILL_SWITCH = (
    "transient", "auth", "validation", "external_api", "database", "kill_switch")


@dataclass(frozen=True)
class Handling:
    retries: int | None  # None: with backoff until the retry rule's attempts run out; 0: never; 1: once
    severity: Severity  # of the first failures
    escalate_after: int | None = None  # failures in a row after which it is WARN
    escalated: Severity = Severity.WARN

    def severity_after(self, failures: int) -> Severity:
        """The alert severity after `failures` (≥ 1) failures in a row."""
        if self.escalate_after is not None and failures >= self.escalate_after:
            return self.escalated
        return self.severity

    @property
    def retryable(self) -> bool:
        return self.retries is None or self.retries > 0


HANDLING = {
    TRANSIENT: Handling(None, Severity.INFO, escalate_after=3),
    AUTH: Handling(0, Severity.WARN),
    VALIDATION: Handling(0, Severity.INFO),
    EXTERNAL_API: Handling(None, Severity.INFO, escalate_after=3),
    DATABASE: Handling(1, Severity.INFO, escalate_after=2),  # the retry failed too: persistent
    KILL_SWITCH: Handling(0, Severity.INFO),
}
