"""Seed 004's nine synthetic monitors as named default checks against one configurable base URL.

`OPS_SYNTHETICS_BASE_URL` (e.g. https://app.example.com) turns them on; unset, none run (the checks of
OPS_SYNTHETIC_CHECKS and `synthetic_checks` still do). A monitor that is a flow is several steps, run in
order on one HTTP client (cookies kept), each timed on its own; a step may keep a value of its JSON answer
(`keep`: name → key) for the paths of later steps (`{name}`). The first failing step ends the flow: the
later ones are reported as not run. Each step is one result (`<monitor>.<step>`), and the monitor itself
one more (`<monitor>`, its total time, failing with the first failing step's reason), all in ClickHouse's
`synthetic_results` like any check.

Login flows post `OPS_SYNTHETICS_USERNAME` / `OPS_SYNTHETICS_PASSWORD` and send the `access_token` they get
back as a bearer token; the password is a secret and appears in no result.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import UTC, datetime

import httpx

from ops_platform.monitoring.probes import ProbeResult
from ops_platform.outbound.http import safe_url
from ops_platform.settings import Settings, current

DEFAULT_MAX_LATENCY_MS = 3000


@dataclass(frozen=True)
class Step:
    name: str
    method: str
    path: str  # may name kept values: /v1/exports/{export_id}/download
    expect_status: int = 200
    body: dict | None = None  # JSON; "{username}" / "{password}" filled from the environment
    keep: dict[str, str] = field(default_factory=dict)  # value name → key of the JSON answer
    max_latency_ms: int = DEFAULT_MAX_LATENCY_MS


LOGIN = Step("login", "POST", "/v1/auth/login", body={"username": "{username}", "password": "{password}"},
             keep={"token": "access_token"})

MONITORS: dict[str, list[Step]] = {
    "connector_health": [Step("status", "GET", "/v1/connectors/health")],
    "trust_center": [Step("status", "GET", "/v1/trust-center/status")],
    "export": [Step("request", "POST", "/v1/exports", 202, {"format": "csv"}, {"export_id": "id"}),
               Step("download", "GET", "/v1/exports/{export_id}/download", max_latency_ms=10_000)],
    "boardroom_deck": [LOGIN, Step("generate", "POST", "/v1/boardroom/decks", 202, {"period": "last_quarter"},
                                   {"deck_id": "id"}),
                       Step("download", "GET", "/v1/boardroom/decks/{deck_id}", max_latency_ms=10_000)],
    "approval_workflow": [LOGIN, Step("queue", "GET", "/v1/approvals?status=pending")],
    "tenant_login": [LOGIN, Step("load", "GET", "/v1/me")],
    "report_generation": [LOGIN, Step("request", "POST", "/v1/reports", 202, {"template": "impact_summary"},
                                      {"report_id": "id"}),
                          Step("download", "GET", "/v1/reports/{report_id}/download", max_latency_ms=10_000)],
    "evidence_explorer": [LOGIN, Step("search", "GET", "/v1/evidence?limit=10")],
    "dashboard_load": [LOGIN, Step("load", "GET", "/v1/dashboard")],
}


def is_step(check_name: str) -> bool:
    """A step of a default monitor (`<monitor>.<step>`): stored, but its monitor's result is what alerts."""
    monitor, dot, _ = check_name.partition(".")
    return bool(dot) and monitor in MONITORS


def run_monitors(timeout_seconds: float, monitors: dict[str, list[Step]] | None = None,
                 settings: Settings | None = None) -> list[ProbeResult]:
    """Every default monitor against OPS_SYNTHETICS_BASE_URL (of `settings`, else this process's), in
    order; [] when it is not set."""
    settings = settings or current()
    base = settings.synthetics_base_url
    if not base:
        return []
    password = settings.synthetics_password
    credentials = {"username": settings.synthetics_username or "",
                   "password": password.get_secret_value() if password else ""}
    results: list[ProbeResult] = []
    for name, steps in (monitors or MONITORS).items():
        with httpx.Client(base_url=base.rstrip("/"), timeout=timeout_seconds, follow_redirects=True) as client:
            results += run_flow(client, name, steps, credentials, timeout_seconds)
    return results


def run_flow(client: httpx.Client, monitor: str, steps: list[Step], credentials: dict[str, str],
             timeout_seconds: float) -> list[ProbeResult]:
    """The step results of one monitor, then its overall result (see the module)."""
    kept: dict[str, str] = {}
    results: list[ProbeResult] = []
    started_at, started = datetime.now(UTC), time.perf_counter()
    failure = ""
    for step in steps:
        if failure:
            results.append(ProbeResult(f"{monitor}.{step.name}", "", datetime.now(UTC), None, 0.0, False,
                                       "not run: an earlier step failed"))
            continue
        result, values = _run_step(client, monitor, step, kept, credentials, timeout_seconds)
        kept |= values
        results.append(result)
        failure = "" if result.ok else f"{step.name}: {result.error}"
    total = round((time.perf_counter() - started) * 1000, 1)
    url = results[0].url if results else ""
    results.append(ProbeResult(monitor, url, started_at, results[-1].status_code if not failure else None,
                               total, not failure, failure))
    return results


def _run_step(client, monitor, step, kept, credentials, timeout_seconds) -> tuple[ProbeResult, dict[str, str]]:
    ts, started = datetime.now(UTC), time.perf_counter()
    status, error, values = None, "", {}
    try:
        path = step.path.format(**kept)
    except KeyError as missing:
        return ProbeResult(f"{monitor}.{step.name}", "", ts, None, 0.0, False, f"no value {missing} kept"), {}
    url = safe_url(str(client.base_url.join(path)))
    headers = {"Authorization": f"Bearer {kept['token']}"} if "token" in kept else {}
    body = {k: v.format(**credentials) if isinstance(v, str) else v for k, v in step.body.items()} if step.body else None
    try:
        answer = client.request(step.method, path, json=body, headers=headers)
        status = answer.status_code
        if status != step.expect_status:
            error = f"expected status {step.expect_status}, got {status}"
        elif step.keep:
            data = answer.json()
            missing = [key for key in step.keep.values() if not isinstance(data, dict) or key not in data]
            if missing:
                error = f"the answer has no {', '.join(missing)}"
            else:
                values = {name: str(data[key]) for name, key in step.keep.items()}
    except httpx.TimeoutException:
        error = f"no answer within {timeout_seconds:g} s"
    except httpx.HTTPError as err:
        error = f"{type(err).__name__}"
    except ValueError:
        error = "the answer is not JSON"
    latency_ms = round((time.perf_counter() - started) * 1000, 1)
    if not error and latency_ms > step.max_latency_ms:
        error = f"slow: answered in {latency_ms:.0f} ms (max {step.max_latency_ms} ms)"
    return ProbeResult(f"{monitor}.{step.name}", url, ts, status, latency_ms, not error, error), values
