"""HTTP probes shared by synthetic monitoring and the health monitor: status, latency, a short error.

URLs are reported without credentials, query string or fragment (they may hold tokens), so
results can go to ClickHouse, incidents and logs.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime

import httpx

from ops_platform.outbound.http import safe_url

MAX_PARALLEL = 8


@dataclass(frozen=True)
class Probe:
    name: str
    url: str
    expect_status: int | None = 200  # None: any answer below 400 is healthy
    max_latency_ms: int | None = None  # None: no latency limit beyond the timeout


@dataclass(frozen=True)
class ProbeResult:
    name: str
    url: str  # safe_url(probe.url)
    ts: datetime
    status_code: int | None  # None: no answer
    latency_ms: float
    ok: bool
    error: str  # '' when ok

    @property
    def slow_only(self) -> bool:
        """The endpoint answered as expected, just too slowly."""
        return not self.ok and self.error.startswith("slow:")


def probe_all(probes: Sequence[Probe], timeout_seconds: float) -> list[ProbeResult]:
    """GET every probe's URL (up to MAX_PARALLEL at a time), in the order given."""
    if not probes:
        return []
    with httpx.Client(timeout=timeout_seconds, follow_redirects=True) as client, \
            ThreadPoolExecutor(max_workers=min(MAX_PARALLEL, len(probes))) as pool:
        return list(pool.map(lambda p: probe_one(client, p, timeout_seconds), probes))


def probe_one(client: httpx.Client, probe: Probe, timeout_seconds: float) -> ProbeResult:
    ts = datetime.now(UTC)
    started = time.perf_counter()
    status, error = None, ""
    try:
        status = client.get(probe.url).status_code
    except httpx.TimeoutException:
        error = f"no answer within {timeout_seconds:g} s"
    except httpx.HTTPError as err:
        error = f"{type(err).__name__}: {_without_url(str(err), probe.url)}"
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    if status is not None:
        if probe.expect_status is not None and status != probe.expect_status:
            error = f"expected status {probe.expect_status}, got {status}"
        elif probe.expect_status is None and status >= 400:
            error = f"got status {status}"
        elif probe.max_latency_ms is not None and latency_ms > probe.max_latency_ms:
            error = f"slow: answered in {latency_ms:.0f} ms (max {probe.max_latency_ms} ms)"
    return ProbeResult(probe.name, safe_url(probe.url), ts, status, latency_ms, not error, error)


def _without_url(message: str, url: str) -> str:
    return message.replace(url, safe_url(url))[:300] or "request failed"
