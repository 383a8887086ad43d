"""Seed 004 cache warmer: it warms what it claims (every cache it names, from cold), on its configurable cron."""

from datetime import UTC, datetime

from helpers import sql
from test_cli import ops

from ops_platform.definitions import defs
from ops_platform.demo.generate import generate

CACHES = ("agent_stats_cache", "build_stats_cache", "campaign_usage")


def test_the_cache_warmer_fills_every_cache_it_names_from_cold(postgres, instance):
    generate(postgres, scale=2_000, now=datetime.now(UTC))
    sql(postgres, f"TRUNCATE {', '.join(CACHES)}")
    job = defs.resolve_job_def("cache_warmer_job")
    result = job.execute_in_process(instance=instance, resources={"postgres": postgres})
    assert result.success
    agents, non_draft = (sql(postgres, q)[0][0] for q in (
        "SELECT count(*) FROM agents", "SELECT count(*) FROM campaigns WHERE status <> 'draft'"))
    this_hour = sql(postgres, "SELECT date_trunc('hour', now())")[0][0]
    assert sql(postgres, "SELECT count(*) FROM agent_stats_cache")[0][0] == agents  # every agent's stats
    assert sql(postgres, "SELECT count(*) FROM build_stats_cache")[0][0] > 0
    usage = sql(postgres, "SELECT count(*), count(seats_used), count(credits_used) FROM campaign_usage "
                          "WHERE snapshot_hour = :h", h=this_hour)[0]
    assert non_draft > 0 and tuple(usage) == (non_draft, non_draft, non_draft)  # seat and credit usage, this hour
    materialized = {e.asset_key.to_user_string() for e in result.get_asset_materialization_events()}
    assert materialized == {"agent_stats_cache", "build_stats", "seat_usage", "credit_usage"}


def test_the_cache_warmer_cron_is_configurable():
    result = ops("check", CACHE_WARMER_CRON="0 6 * * 1-5")
    line = next(line for line in result.stdout.splitlines() if "cache_warmer_schedule" in line)
    assert result.returncode == 0 and "0 6 * * 1-5" in line and "America/Chicago" in line
    assert ops("check", CACHE_WARMER_CRON="at six").returncode == 2
