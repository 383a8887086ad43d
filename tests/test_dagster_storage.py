"""Dagster's own storage on the embedded Postgres, as dagster.yaml configures it for `make run`."""

from pathlib import Path

import dagster as dg
import yaml

from ops_platform.definitions import defs
from ops_platform.jobs.agent_builds import agent_stats_job

ROOT = Path(__file__).parent.parent


def test_runs_events_and_run_queue_live_in_postgres(pg_server, platform_env, monkeypatch):
    dagster_url = pg_server.create("dagster_storage_test")
    monkeypatch.setenv("DAGSTER_PG_URL", dagster_url)
    settings = yaml.safe_load((ROOT / "dagster.yaml").read_text())  # storage read from DAGSTER_PG_URL
    with dg.instance_for_test(overrides=settings) as instance:
        assert type(instance.run_storage).__name__ == "PostgresRunStorage"
        result = defs.resolve_job_def(agent_stats_job.name).execute_in_process(instance=instance)
        assert result.success
        stored = instance.get_run_by_id(result.run_id)
        assert stored.status == dg.DagsterRunStatus.SUCCESS
        materialization = instance.get_latest_materialization_event(dg.AssetKey("agent_stats_cache"))
        assert materialization is not None and materialization.run_id == result.run_id
