"""The one retry rule of every outgoing call (the HTTP channels, the events outbox's webhooks, SMTP, the
retry queue's HTTP jobs), on tenacity.

- Attempts: 3 by default (seed 001: "max 3 attempts"), counting attempts an earlier run already made.
- Backoff after the n-th failed attempt: base·2^(n−1) seconds (1 s, 2 s by default), capped at 60 s,
  with ±25 % jitter so many senders do not retry in step.
- A wait the other side asks for (`Retry-After`, Telegram's `parameters.retry_after`, a rate-limit reset
  header: see `http.wait_hint`) replaces a shorter backoff.
- A wait longer than WAIT_HINT_CAP_SECONDS is not slept: the call gives up at once with a DeliveryError whose
  `retry_at` is now + the wait, and the caller hands the work to the retry queue with that `run_at`.
- What is retried: an attempt raises `Retryable` (network errors, 408, 425, 429, 5xx: `retryable_status`);
  `Final` (any other refusal) ends the call at once with a DeliveryError whose `retryable` is False.
"""

from __future__ import annotations

import random
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TypeVar

import tenacity


# The longest wait a provider may ask for that a run sleeps through. 10 s keeps a message's claim
# transaction short and a retry-queue pass (10 jobs × 3 attempts: 3 timeouts of 10 s + 2 waits) under the
# queue's 10-minute abandoned-claim timeout; a longer wait goes to the retry queue instead.
WAIT_HINT_CAP_SECONDS = 10.0
BACKOFF_CAP_SECONDS = 60.0

T = TypeVar("T")


class DeliveryError(RuntimeError):
    """A call gave up: `attempts` made in all; `retryable`: whether a later try may succeed (False: the
    other side refused the request itself, so the retry queue dead-letters it at once); `retry_at` (UTC),
    when set, is the earliest time the other side asked to be tried again (its wait hint), which the
    retry queue uses as the job's `run_at`. The message of a failure that is not retryable ends with
    "(not retried)", for people; code reads `retryable`."""

    def __init__(self, message: str, attempts: int, retry_at: datetime | None = None, retryable: bool = True):
        super().__init__(message if retryable else f"{message} (not retried)")
        self.attempts, self.retry_at, self.retryable = attempts, retry_at, retryable


def retryable_status(status: int | None) -> bool:
    """Whether a failed HTTP call may succeed if repeated: network errors (None), 408, 425, 429 and 5xx.
    Any other 4xx is the provider refusing the request itself; repeating it only repeats the refusal."""
    return status is None or status in (408, 425, 429) or status >= 500


class AttemptFailed(Exception):
    """One attempt failed. `error` names the failure (a status, an exception type, a provider's reason)
    and never a URL or a secret; `status` is the HTTP status, None for a network error or SMTP."""

    def __init__(self, error: str, status: int | None = None):
        super().__init__(error)
        self.error, self.status = error, status


class Retryable(AttemptFailed):
    """Another attempt may succeed; `wait_hint` is the wait in seconds the other side asked for, if any."""

    def __init__(self, error: str, status: int | None = None, wait_hint: float | None = None):
        super().__init__(error, status)
        self.wait_hint = wait_hint


class Final(AttemptFailed):
    """Repeating the attempt only repeats the refusal."""


def backoff_delay(base_seconds: float, attempt: int, cap_seconds: float = BACKOFF_CAP_SECONDS) -> float:
    """Seconds to wait after the `attempt`-th (1-based) failed attempt: base·2^(attempt−1), capped, ±25 % jitter."""
    return min(base_seconds * 2 ** (attempt - 1), cap_seconds) * random.uniform(0.75, 1.25)


@dataclass(frozen=True)
class RetryRule:
    """attempts ≥ 1 in all; backoff_seconds: the base of the backoff; wait_hint_cap_seconds: see the module."""

    attempts: int = 3
    backoff_seconds: float = 1.0
    wait_hint_cap_seconds: float = WAIT_HINT_CAP_SECONDS

    def call(self, attempt: Callable[[], T], name: str, done: int = 0,
             sleep: Callable[[float], None] = time.sleep) -> T:
        """Run `attempt` until it returns, raises anything but `Retryable`, or the rule gives up.

        `done`: attempts already made (by an earlier run) that count against `attempts`. Returns what
        `attempt` returns. Raises DeliveryError(message, attempts made in all, retry_at, retryable): `"{name}:
        {error} (not retried)"`, not retryable, on `Final`; `"{name}: {error} after {n} attempts"` when they run out, with `retry_at`
        = now + the last wait hint if there was one; or, when a wait hint is over the cap, at once with
        `retry_at` = now + the hint (nothing is slept). Other exceptions of `attempt` pass through.
        """
        made = 0

        def counted() -> T:
            nonlocal made
            made += 1
            return attempt()

        retrying = tenacity.Retrying(
            stop=tenacity.stop_after_attempt(max(1, self.attempts - done)) | self._hint_over_cap,
            wait=lambda state: self._wait(state, done), retry=tenacity.retry_if_exception_type(Retryable),
            sleep=sleep, reraise=True)
        try:
            return retrying(counted)
        except Final as err:
            raise DeliveryError(f"{name}: {err.error}", done + made, retryable=False) from None
        except Retryable as err:
            hint = err.wait_hint
            retry_at = datetime.now(UTC) + timedelta(seconds=hint) if hint else None
            if hint and hint > self.wait_hint_cap_seconds and done + made < self.attempts:
                raise DeliveryError(f"{name}: {err.error}, asked to wait {hint:.0f} s (over the"
                                    f" {self.wait_hint_cap_seconds:.0f} s cap): retried later",
                                    done + made, retry_at) from None
            raise DeliveryError(f"{name}: {err.error} after {done + made} attempts", done + made, retry_at) from None

    def _hint_over_cap(self, state: tenacity.RetryCallState) -> bool:
        return (_hint(state) or 0.0) > self.wait_hint_cap_seconds

    def _wait(self, state: tenacity.RetryCallState, done: int) -> float:
        return max(backoff_delay(self.backoff_seconds, done + state.attempt_number), _hint(state) or 0.0)


def _hint(state: tenacity.RetryCallState) -> float | None:
    error = state.outcome.exception() if state.outcome else None
    return error.wait_hint if isinstance(error, Retryable) else None
