"""Seed 004's nine default synthetic monitors, run against a real HTTP app on 127.0.0.1 that speaks their flows."""

from __future__ import annotations

import json

from helpers import LocalServer

from ops_platform.monitoring.flows import MONITORS, run_monitors
from ops_platform.settings import Settings

PASSWORD = "synthetic-password-123"


class App(LocalServer):
    """The monitored product: login issues a token; exports, decks and reports are requested then downloaded.
    `broken` paths answer 503."""

    def __init__(self, broken=()):
        self.broken, self.seen = set(broken), []

    def respond(self, handler, body):
        path = handler.path
        self.seen.append((handler.command, path, handler.headers.get("Authorization")))
        status, answer = 404, {"error": "not found"}
        if path in self.broken:
            status, answer = 503, {"error": "down"}
        elif path == "/v1/auth/login":
            creds = json.loads(body)
            ok = creds == {"username": "monitor@example.org", "password": PASSWORD}
            status, answer = (200, {"access_token": "tok-1"}) if ok else (401, {"error": "bad credentials"})
        elif handler.command == "POST" and path in ("/v1/exports", "/v1/boardroom/decks", "/v1/reports"):
            status, answer = 202, {"id": "x42"}
        elif handler.command == "GET":
            needs_login = not path.startswith(("/v1/connectors", "/v1/trust-center", "/v1/exports"))
            if needs_login and handler.headers.get("Authorization") != "Bearer tok-1":
                status, answer = 401, {"error": "login first"}
            elif path in ("/v1/connectors/health", "/v1/trust-center/status", "/v1/exports/x42/download",
                          "/v1/boardroom/decks/x42", "/v1/approvals?status=pending", "/v1/me",
                          "/v1/reports/x42/download", "/v1/evidence?limit=10", "/v1/dashboard"):
                status, answer = 200, {"ok": True}
        self.reply_json(handler, status, answer)


def test_the_nine_monitors_with_their_steps_each_timed(settings_env):
    with App(broken={"/v1/reports/x42/download"}) as app:
        settings_env("OPS_SYNTHETICS_BASE_URL", app.base_url)
        settings_env("OPS_SYNTHETICS_USERNAME", "monitor@example.org")
        settings_env("OPS_SYNTHETICS_PASSWORD", PASSWORD)
        results = run_monitors(timeout_seconds=5)
    by_name = {r.name: r for r in results}
    assert [r.name for r in results if "." not in r.name] == list(MONITORS) and len(MONITORS) == 9
    assert {name for name in by_name if not by_name[name].ok} == {"report_generation.download", "report_generation"}
    assert by_name["report_generation"].error == "download: expected status 200, got 503"
    assert by_name["export.request"].status_code == 202 and by_name["export.download"].ok
    for monitor, steps in MONITORS.items():  # the monitor's time covers its steps' times
        assert by_name[monitor].latency_ms >= sum(by_name[f"{monitor}.{s.name}"].latency_ms for s in steps) - 1
    assert ("GET", "/v1/dashboard", "Bearer tok-1") in app.seen  # login, then load with the token it gave
    assert PASSWORD not in str(results)


def test_a_failed_login_stops_its_flow_and_later_steps_are_not_run(settings_env):
    with App() as app:
        settings_env("OPS_SYNTHETICS_BASE_URL", app.base_url)
        settings_env("OPS_SYNTHETICS_USERNAME", "monitor@example.org")
        settings_env("OPS_SYNTHETICS_PASSWORD", "wrong")
        results = {r.name: r for r in run_monitors(timeout_seconds=5, monitors={"dashboard_load": MONITORS["dashboard_load"]})}
    assert results["dashboard_load.login"].error == "expected status 200, got 401"
    assert results["dashboard_load.load"].error == "not run: an earlier step failed"
    assert not results["dashboard_load"].ok and [p for _, p, _ in app.seen] == ["/v1/auth/login"]


def test_no_base_url_no_default_monitors(monkeypatch):
    monkeypatch.delenv("OPS_SYNTHETICS_BASE_URL", raising=False)
    assert run_monitors(timeout_seconds=1, settings=Settings.load()) == []
