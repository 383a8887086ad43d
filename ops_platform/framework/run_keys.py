"""Run keys for sensors: the same work seen again asks for the same run, within a retry window.

Dagster launches a run_key once, whatever that run's outcome. A key made only from the work would
block it forever once its run was refused (a control) or failed, so the key also names a time window:
the same work seen in the next window asks again. A second run of work already done does nothing,
because every job behind these keys is idempotent (unique keys in Postgres).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Iterator, Sequence
from datetime import UTC, datetime
from typing import TypeVar

RETRY_WINDOW_SECONDS = 600
T = TypeVar("T")


def window_index(at: datetime, window_seconds: int = RETRY_WINDOW_SECONDS) -> int:
    """Which window of `window_seconds` since the epoch `at` falls in: what a run_key ends in."""
    return int(at.timestamp()) // window_seconds


def run_key(source: str, parts: Iterable[str], at: datetime | None = None,
            window_seconds: int = RETRY_WINDOW_SECONDS) -> str:
    digest = hashlib.sha256("\n".join(parts).encode()).hexdigest()[:20]
    return f"{source}:{digest}:{window_index(at or datetime.now(UTC), window_seconds)}"


def batches(items: Sequence[T], size: int) -> Iterator[Sequence[T]]:
    for start in range(0, len(items), size):
        yield items[start:start + size]
