"""`ops api` manual triggers, end to end: bearer auth, then a real Dagster webserver (`dagster-webserver` over
this code location, its own instance) launching the run through GraphQL.

The test instance queues runs (QueuedRunCoordinator) and no daemon dequeues them: the test proves what the
trigger promises (a run of the right job, partition, config and tags exists in Dagster, and its id was the
answer) without executing the jobs, which their own tests do.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import UTC, datetime, timedelta

import dagster as dg
import httpx
import pytest

from api_server import serving
from conftest import TEMPLATE
from endpoints import closed_port_url
from helpers import free_port, sql, wait_for
from ops_platform.api.settings import ApiSettings
from ops_platform.settings import PROJECT_ROOT

TOKEN, CRON = "api-token-for-tests", "cron-secret-for-tests"


@pytest.fixture(scope="module")
def dagster_home(tmp_path_factory):
    home = tmp_path_factory.mktemp("dagster_home")
    (home / "dagster.yaml").write_text("run_coordinator:\n  module: dagster.core.run_coordinator\n"
                                       "  class: QueuedRunCoordinator\ntelemetry:\n  enabled: false\n")
    return home


@pytest.fixture(scope="module")
def webserver(dagster_home, pg_server, warehouse_url):
    """A real Dagster webserver on 127.0.0.1 over ops_platform.definitions; yields its URL. Its environment
    names databases as the platform's would (a launch checks that the resources' variables are set)."""
    port = free_port()
    database = pg_server.create(f"api_triggers_{os.getpid()}", template=TEMPLATE)
    env = os.environ | {"DAGSTER_HOME": str(dagster_home), "OPS_DATABASE_URL": database, "OPS_WAREHOUSE_URL": warehouse_url}
    child = subprocess.Popen([sys.executable, "-m", "dagster_webserver", "-m", "ops_platform.definitions",
                              "-h", "127.0.0.1", "-p", str(port)], cwd=PROJECT_ROOT, env=env,
                             stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    url = f"http://127.0.0.1:{port}"

    def ready():
        if child.poll() is not None:
            raise AssertionError(f"dagster-webserver exited: {child.stderr.read().decode()[-2000:]}")
        try:
            return httpx.get(f"{url}/server_info", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_for(ready, "the Dagster webserver to answer", timeout=240, every=1)
        yield url
    finally:
        child.terminate()
        try:
            child.wait(timeout=30)
        except subprocess.TimeoutExpired:
            child.kill()


@pytest.fixture
def instance_of(dagster_home, monkeypatch):
    monkeypatch.setenv("DAGSTER_HOME", str(dagster_home))
    with dg.DagsterInstance.get() as instance:
        yield instance


def api_settings(dagster_url: str) -> ApiSettings:
    return ApiSettings(dagster_url=dagster_url, api_token=TOKEN, cron_secret=CRON)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def test_triggers_refuse_missing_or_wrong_tokens_and_bad_input_before_launching(postgres):
    """Dagster is unreachable here: every answer below is given before any launch is tried."""
    with serving(postgres, api_settings(closed_port_url().rstrip("/"))) as base:
        answers = {
            "no token": httpx.post(f"{base}/v1/analytics/sync"),
            "wrong token": httpx.post(f"{base}/v1/analytics/sync", headers=bearer("nope")),
            "cron secret on an api route": httpx.post(f"{base}/v1/analytics/sync", headers=bearer(CRON)),
            "api token on the cron route": httpx.post(f"{base}/api/cron/cleanup", headers=bearer(TOKEN)),
            "basic scheme": httpx.post(f"{base}/api/cron/cleanup", headers={"Authorization": f"Basic {CRON}"}),
            "not a date": httpx.post(f"{base}/v1/impact-calculator/recalculate", headers=bearer(TOKEN),
                                     json={"date": "2026-13-01"}),
            "future date": httpx.post(f"{base}/v1/impact-calculator/recalculate", headers=bearer(TOKEN),
                                      json={"date": (datetime.now(UTC) + timedelta(days=2)).strftime("%Y-%m-%d")}),
            "not JSON": httpx.post(f"{base}/v1/impact-calculator/recalculate", headers=bearer(TOKEN), content=b"[1"),
            "unknown campaign": httpx.post(f"{base}/v1/campaigns/999/snapshot", headers=bearer(TOKEN)),
            "campaign id": httpx.post(f"{base}/v1/campaigns/abc/snapshot", headers=bearer(TOKEN)),
            "launch": httpx.post(f"{base}/api/cron/cleanup", headers=bearer(CRON)),
        }
    assert {why: a.status_code for why, a in answers.items()} == {
        "no token": 401, "wrong token": 401, "cron secret on an api route": 401, "api token on the cron route": 401,
        "basic scheme": 401, "not a date": 400, "future date": 400, "not JSON": 400, "unknown campaign": 404,
        "campaign id": 400, "launch": 502}
    assert answers["no token"].headers["WWW-Authenticate"] == "Bearer"
    assert "did not launch log_retention_job" in answers["launch"].json()["error"]
    assert TOKEN not in str([a.text for a in answers.values()]) and CRON not in str([a.text for a in answers.values()])


def test_a_trigger_without_its_secret_configured_is_off(postgres):
    with serving(postgres, ApiSettings(api_token=None, cron_secret=None)) as base:
        answer = httpx.post(f"{base}/api/cron/cleanup", headers=bearer("anything"))
    assert answer.status_code == 503 and "CRON_SECRET" in answer.json()["error"]


def test_each_trigger_launches_its_run_through_dagster_graphql(postgres, webserver, instance_of):
    sql(postgres, "INSERT INTO campaigns (name, status, starts_on, ends_on, seat_capacity, credit_budget) "
                  "VALUES ('c', 'active', '2026-01-01', '2026-12-31', 10, 100)")
    now = datetime.now(UTC)
    with serving(postgres, api_settings(webserver)) as base:
        launched = {
            "vis": httpx.post(f"{base}/v1/impact-calculator/recalculate", headers=bearer(TOKEN), json={"date": "2026-06-01"}),
            "vis default": httpx.post(f"{base}/v1/impact-calculator/recalculate", headers=bearer(TOKEN)),
            "snapshot": httpx.post(f"{base}/v1/campaigns/1/snapshot", headers=bearer(TOKEN)),
            "sync": httpx.post(f"{base}/v1/analytics/sync", headers=bearer(TOKEN)),
            "cleanup": httpx.post(f"{base}/api/cron/cleanup", headers=bearer(CRON)),
            "guests": httpx.post(f"{base}/api/cron/cleanup-expired-orgs", headers=bearer(CRON)),
            "costs": httpx.post(f"{base}/v1/analytics/finops/aggregate", headers=bearer(TOKEN), json={"date": "2026-06-01"}),
        }
    assert {k: a.status_code for k, a in launched.items()} == dict.fromkeys(launched, 202), \
        {k: a.text for k, a in launched.items()}
    runs = {k: instance_of.get_run_by_id(a.json()["run_id"]) for k, a in launched.items()}
    assert {k: (r.job_name, r.tags.get("dagster/partition")) for k, r in runs.items()} == {
        "vis": ("vis_job", "2026-06-01"),
        "vis default": ("vis_job", (now - timedelta(days=1)).strftime("%Y-%m-%d")),
        "snapshot": ("campaign_metrics_job", (now - timedelta(hours=1)).strftime("%Y-%m-%d-%H:00")),
        "sync": ("warehouse_sync_job", now.strftime("%Y-%m-%d")),
        "cleanup": ("log_retention_job", None),
        "guests": ("guest_cleanup_job", None),
        "costs": ("cost_aggregation_job", "2026-06-01"),
    }
    assert all(r.status == dg.DagsterRunStatus.QUEUED for r in runs.values())
    assert runs["cleanup"].tags["ops/trigger"] == "/api/cron/cleanup"
    assert {op["config"]["mode"] for op in runs["sync"].run_config["ops"].values()} == {"incremental"}
    assert runs["snapshot"].run_config == {  # that campaign's row of the hour only
        "ops": {"warehouse__campaign_metrics_hourly": {"config": {"campaign_ids": [1]}}}}
