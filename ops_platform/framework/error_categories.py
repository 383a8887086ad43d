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


TRANSIENT, AUTH, VALIDATION, EXTERNAL_API, DATABASE, KILL_SWITCH = (
    "transient", "auth", "validation", "external_api", "database", "kill_switch")


INFO, WARN = "INFO", "WARN"  # notification severities, by name (framework/ imports nothing of notifications/)


@dataclass(frozen=True)
class Handling:
    retries: int | None  # None: with backoff until the retry rule's attempts run out; 0: never; 1: once
    severity: str  # of the first failures
    escalate_after: int | None = None  # failures in a row after which it is WARN
    escalated: str = WARN

    def severity_after(self, failures: int) -> str:
        """The alert severity after `failures` (≥ 1) failures in a row."""
        if self.escalate_after is not None and failures >= self.escalate_after:
            return self.escalated
        return self.severity

    @property
    def retryable(self) -> bool:
        return self.retries is None or self.retries > 0


HANDLING = {
    TRANSIENT: Handling(None, INFO, escalate_after=3),
    AUTH: Handling(0, WARN),
    VALIDATION: Handling(0, INFO),
    EXTERNAL_API: Handling(None, INFO, escalate_after=3),
    DATABASE: Handling(1, INFO, escalate_after=2),  # the retry failed too: persistent
    KILL_SWITCH: Handling(0, INFO),
}


_DATABASE = ("DatabaseUnavailable", "OperationalError", "InterfaceError", "DeadlockDetected", "SerializationFailure")
_TRANSIENT = ("TimeoutError", "ConnectionError", "TransportError", "ConnectError", "ReadTimeout", "ConnectTimeout",
              "RemoteProtocolError", "WarehouseBusy")
_VALIDATION = ("ConfigError", "ValidationError", "ValueError", "KeyError", "TypeError", "DagsterInvalidConfigError",
               "JSONDecodeError", "IntegrityError", "CheckViolation")
_AUTH_WORDS = ("HTTP 401", "HTTP 403", "credentials refused", "Unauthorized", "Forbidden")


def categorize(class_names: list[str], message: str, metadata: dict | None = None) -> str:
    """The seed's category of a failure: its declared `category` metadata (a SourceFailed, a refusal), else by
    the error classes along its cause chain and its message. Unknown errors count as transient: retried with
    backoff, at most the queue's 5 attempts, then dead-lettered."""
    metadata = metadata or {}
    if "refused_by" in metadata:
        return KILL_SWITCH
    declared = metadata.get("category")
    if declared in HANDLING:
        return declared
    if any(word in message for word in _AUTH_WORDS):
        return AUTH
    for names, category in ((_DATABASE, DATABASE), (_TRANSIENT, TRANSIENT), (_VALIDATION, VALIDATION)):
        if any(name in names for name in class_names):
            return category
    if "DeliveryError" in class_names or "SourceFailed" in class_names:
        return EXTERNAL_API
    return TRANSIENT
