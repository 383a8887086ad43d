"""What the health monitor (seed 003) checks: it runs even when jobs are disabled.

It checks the database (reachable, answer time), the external endpoints of OPS_HEALTH_ENDPOINTS
(comma-separated URLs, GET, any answer below 400 is healthy), the disk under the data directory and
whether the dead-letter table grew, reports the switches, and launches one alert run per hour when
unhealthy. Each tick also keeps the database answer time in db_latency_samples, which the latency
watcher averages. It obeys no control, the kill switch included: it changes no product data, and
the alert it launches goes through the notification policy, which suppresses it under the kill
switch or with comms off.
"""

from __future__ import annotations

import shutil
import time

from sqlalchemy import text

from ops_platform.framework.controls import read_controls
from ops_platform.monitoring.probes import Probe, probe_all
from ops_platform.outbound.http import safe_url
from ops_platform.resources.postgres import DatabaseUnavailable, PostgresResource
from ops_platform.settings import ConfigError, Settings, current

DB_SLOW_MS = 1000
DISK_ALERT_PERCENT = 90
ENDPOINTS_VAR = "OPS_HEALTH_ENDPOINTS"
ENDPOINT_TIMEOUT_SECONDS = 5.0

DEAD_LETTERS_SQL = text("SELECT count(*), count(*) FILTER (WHERE created_at > now() - interval '1 hour') "
                        "FROM dead_letters WHERE resolved_at IS NULL")
LATENCY_SAMPLE_SQL = text("INSERT INTO db_latency_samples (latency_ms) VALUES (:ms)")


def health_endpoints(settings: Settings | None = None) -> list[Probe]:
    """The URLs of OPS_HEALTH_ENDPOINTS; a ConfigError (without the URL: it may hold a token) if one is not http(s)."""
    urls = (settings or current()).health_endpoints
    for index, url in enumerate(urls):
        if not url.startswith(("http://", "https://")) or not safe_url(url).split("://", 1)[1]:
            raise ConfigError(f"{ENDPOINTS_VAR}: entry {index + 1} is not an http(s) URL; expected a comma-separated "
                              "list such as https://api.notion.com,https://n8n.example.com/healthz")
    return [Probe(safe_url(url), url, expect_status=None) for url in urls]


def check_endpoints(probes: list[Probe], timeout_seconds: float = ENDPOINT_TIMEOUT_SECONDS) -> tuple[list[str], dict]:
    results = probe_all(probes, timeout_seconds)
    problems = [f"endpoint {r.url}: {r.error}" for r in results if not r.ok]
    return problems, {f"endpoint {r.url}": (f"{r.status_code} in {r.latency_ms:.0f} ms" if r.ok else r.error)
                      for r in results}


def check_health(postgres: PostgresResource, disk_alert_percent: float = DISK_ALERT_PERCENT,
                 endpoints: list[Probe] | None = None) -> tuple[list[str], dict]:
    """(problems, report). An empty problem list means healthy."""
    problems, report = [], {}
    started = time.perf_counter()
    try:
        with postgres.begin() as conn:
            conn.execute(text("SELECT 1"))
            controls = read_controls(conn)
            open_letters, new_letters = conn.execute(DEAD_LETTERS_SQL).one()
            latency_ms = round((time.perf_counter() - started) * 1000, 1)
            conn.execute(LATENCY_SAMPLE_SQL, {"ms": latency_ms})
        report |= {"db_latency_ms": latency_ms, "kill_switch": controls.kill_switch,
                   "jobs_enabled": controls.jobs_enabled, "open_dead_letters": open_letters}
        if latency_ms > DB_SLOW_MS:
            problems.append(f"database answered in {latency_ms} ms (> {DB_SLOW_MS} ms)")
        if new_letters:  # the queue grew; letters already reported are listed, not re-alerted
            problems.append(f"{new_letters} new dead letters in the last hour ({open_letters} unresolved; "
                            "see `ops dead-letters`)")
    except DatabaseUnavailable as err:
        problems.append(str(err))
    home = current().home.resolve()
    usage = shutil.disk_usage(home if home.exists() else home.parent)
    used = round(100 * usage.used / usage.total, 1)
    report["disk_used_percent"] = used
    if used >= disk_alert_percent:
        problems.append(f"disk {used}% used (alert at {disk_alert_percent}%)")
    endpoint_problems, endpoint_report = check_endpoints(health_endpoints() if endpoints is None else endpoints)
    return problems + endpoint_problems, report | endpoint_report
