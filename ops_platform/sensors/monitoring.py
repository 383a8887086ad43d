"""Seed 003's monitoring sensors: the watchers and the health monitor, both every 5 minutes.

Watchers (`run_watchers`): anomalies become deduplicated incidents and notification runs. The tick opens the incidents itself (one INSERT, unique per type, subject and hour) and asks for
notification runs for every incident that holds now and has no notification recorded yet: the
run_keys and the notifications' dedup keys make that one delivery, and a run request lost with a
crashed daemon is asked for again at the next tick. A watcher that fails is logged, audited and
reported as a `watcher_broken` incident; the others go on.

Health monitor: database, endpoints, disk, dead letters (monitoring/health.py); one alert run per
hour when unhealthy. It obeys no control, the kill switch included: it changes no product data, and
the alert it launches goes through the notification policy, which suppresses it under the kill
switch or with comms off.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime

import dagster as dg

from ops_platform.framework.audit import record
from ops_platform.framework.controls import WRITE_JOB
from ops_platform.framework.guard import tick_gate
from ops_platform.jobs.notifications import notify_job, notify_requests
from ops_platform.monitoring.health import check_health, health_endpoints
from ops_platform.monitoring.incidents import Incident, open_incidents, unsent_notifications
from ops_platform.monitoring.watchers import WATCHERS, Watcher, run_watchers
from ops_platform.notifications import Notification, Severity
from ops_platform.resources.postgres import PostgresResource

SENSOR_NAME = "watchers"
health_endpoints()  # a bad OPS_HEALTH_ENDPOINTS stops the code location loading, with the reason


@dataclass(frozen=True)
class WatchTick:
    run_requests: list[dg.RunRequest]
    summary: str
    errors: dict[str, str]


def evaluate_watchers(postgres: PostgresResource, now: datetime,
                      watchers: tuple[Watcher, ...] = WATCHERS) -> WatchTick:
    """One tick at `now`: run the watchers, open their incidents, ask for their notifications."""
    report = run_watchers(postgres, now, watchers)
    broken = [Incident("watcher_broken", name, Severity.WARN, f"Watcher {name} failed",
                       f"The {name} watcher could not run: {error}. The other watchers ran.")
              for name, error in report.errors.items()]
    found = report.incidents + broken
    with postgres.begin() as conn:
        for name, error in report.errors.items():
            record(conn, action=f"{SENSOR_NAME}:{name}", action_type="system", success=False, error=error)
        new = open_incidents(conn, found, now)
        messages = unsent_notifications(conn, found, now)
    summary = (f"{len(report.checked)}/{len(watchers)} watchers ran; {len(found)} incidents hold "
               f"({len(new)} new this hour)")
    if report.errors:
        summary += "; failed: " + "; ".join(f"{name}: {error}" for name, error in report.errors.items())
    return WatchTick(notify_requests(SENSOR_NAME, messages, at=now), summary, report.errors)


@dg.sensor(name=SENSOR_NAME, job=notify_job, minimum_interval_seconds=300,
           default_status=dg.DefaultSensorStatus.RUNNING,
           description="Seed 003 watchers (*/5): repeated failures, rate limits ≥80%, API volume ≥200% of baseline, "
                       "DB latency >1000 ms; one incident per type, subject and hour.")
def watchers_sensor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
    now = datetime.now(UTC)
    skip = tick_gate(postgres, SENSOR_NAME, WRITE_JOB, at=now)
    if skip:
        return dg.SensorResult(skip_reason=skip)
    tick = evaluate_watchers(postgres, now)
    (context.log.error if tick.errors else context.log.info)(tick.summary)
    if not tick.run_requests:
        return dg.SensorResult(skip_reason=dg.SkipReason(tick.summary))
    return dg.SensorResult(run_requests=tick.run_requests)


@dg.sensor(job=notify_job, minimum_interval_seconds=300, default_status=dg.DefaultSensorStatus.RUNNING,
           description="Health monitor: database, external endpoints, disk, dead letters, switches; ignores "
                       "jobs_enabled; alerts at most hourly; samples DB latency for the watchers.")
def health_monitor(context: dg.SensorEvaluationContext, postgres: PostgresResource) -> dg.SensorResult:
    problems, report = check_health(postgres)
    if not problems:
        return dg.SensorResult(skip_reason=dg.SkipReason(f"healthy: {report}"))
    if "db_latency_ms" not in report:
        # Nothing can be recorded or sent through a database we cannot reach: say it in the tick.
        context.log.error("; ".join(problems))
        return dg.SensorResult(skip_reason=dg.SkipReason("UNHEALTHY: " + "; ".join(problems)))
    hour = datetime.now(UTC).strftime("%Y-%m-%dT%H")
    alert = Notification(type="health_alert", severity=Severity.WARN, title="System Health Degraded",
                         body="\n".join(problems + [f"{k}: {v}" for k, v in report.items()]),
                         dedup_key=f"health_alert:{hour}")
    return dg.SensorResult(run_requests=notify_requests("health_alert", [alert]))
