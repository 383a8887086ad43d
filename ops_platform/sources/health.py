"""Are the sources' APIs up? One small authenticated request each, for the health monitor (seed 003).

No Postgres is needed (no rate-limit slot, no api_calls row): the health monitor must still answer
when the database is down. A source that is not configured is reported as such, not as unhealthy.
A 401/403 is unhealthy (the sync would fail), as is no answer, a 5xx or an answer slower than the timeout;
a 429 means the API is up and busy, so it is healthy.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

import httpx

from ops_platform.sources.sync import SourceResource

TIMEOUT_SECONDS = 5.0


@dataclass(frozen=True)
class SourceHealth:
    source: str
    ok: bool
    detail: str  # "200 in 12 ms", "not configured", "HTTP 401", "ConnectError: no answer"


def check_sources(sources: Iterable[SourceResource], timeout_seconds: float = TIMEOUT_SECONDS) -> list[SourceHealth]:
    results = []
    for source in sources:
        request = source.health_request()
        if request is None:
            continue
        if source.needs():
            results.append(SourceHealth(source.name, True, "not configured"))
            continue
        started = time.perf_counter()
        try:
            with httpx.Client(base_url=request.base_url.rstrip("/"), timeout=timeout_seconds) as client:
                status = client.request(request.method, request.path, headers=request.headers, params=request.params,
                                        json=request.json).status_code
        except httpx.HTTPError as err:
            results.append(SourceHealth(source.name, False, f"{type(err).__name__}: no answer"))
            continue
        ms = (time.perf_counter() - started) * 1000
        ok = status < 400 or status == 429
        results.append(SourceHealth(source.name, ok, f"{status} in {ms:.0f} ms" if ok else f"HTTP {status}"))
    return results
