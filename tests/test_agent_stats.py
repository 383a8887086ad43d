"""The agent stats cache equals an independent recomputation, and empty tables give zeros."""

from datetime import UTC, datetime
from decimal import Decimal

import dagster as dg
from helpers import sql

from ops_platform.assets.agent_builds import agent_stats_cache
from ops_platform.demo.generate import generate

# Written differently on purpose: correlated subqueries per agent, the seed's loop in SQL.
INDEPENDENT = """
SELECT a.name,
       (SELECT count(*) FROM tasks t WHERE t.agent_name = a.name) AS total,
       (SELECT count(*) FROM tasks t WHERE t.agent_name = a.name AND t.status = 'done') AS done,
       (SELECT count(*) FROM tasks t WHERE t.agent_name = a.name AND t.status = 'failed') AS failed,
       (SELECT round(avg(duration_ms), 2) FROM executions e WHERE e.agent_name = a.name) AS avg_ms,
       (SELECT max(ts) FROM executions e WHERE e.agent_name = a.name) AS last_active,
       EXISTS (SELECT 1 FROM tasks t WHERE t.agent_name = a.name AND t.status = 'running') AS active
FROM agents a ORDER BY a.name
"""
CACHED = """
SELECT agent_name, total_tasks, completed_tasks, failed_tasks, avg_duration_ms, last_active,
       current_status = 'active', success_rate
FROM agent_stats_cache ORDER BY agent_name
"""


def test_cache_matches_independent_recomputation(postgres, instance):
    generate(postgres, scale=20_000, now=datetime(2026, 11, 1, tzinfo=UTC))
    result = dg.materialize([agent_stats_cache], resources={"postgres": postgres}, instance=instance)
    expected = sql(postgres, INDEPENDENT)
    cached = sql(postgres, CACHED)
    assert len(cached) == 21
    assert [tuple(r[:7]) for r in cached] == [tuple(r) for r in expected]
    for row in cached:
        assert row.success_rate == (Decimal(100 * row.completed_tasks) / row.total_tasks).quantize(Decimal("0.01"))
    metadata = result.asset_materializations_for_node("agent_stats_cache")[0].metadata
    assert metadata["computed"].value == 21


def test_refresh_upserts_and_follows_changes(postgres, instance):
    generate(postgres, scale=2_000, now=datetime(2026, 11, 1, tzinfo=UTC))
    dg.materialize([agent_stats_cache], resources={"postgres": postgres}, instance=instance)
    sql(postgres, "UPDATE tasks SET status = 'done' WHERE agent_name = 'MARS'")
    dg.materialize([agent_stats_cache], resources={"postgres": postgres}, instance=instance)
    mars = sql(postgres, "SELECT success_rate, failed_tasks, current_status FROM agent_stats_cache WHERE agent_name = 'MARS'")
    assert mars == [(Decimal("100.00"), 0, "idle")]
    assert sql(postgres, "SELECT count(*) FROM agent_stats_cache")[0][0] == 21  # upserted, not appended


def test_empty_tables_give_zeros_not_errors(postgres, instance):
    result = dg.materialize([agent_stats_cache], resources={"postgres": postgres}, instance=instance)
    assert result.success and sql(postgres, "SELECT count(*) FROM agent_stats_cache")[0][0] == 0
    sql(postgres, "INSERT INTO agents (name) VALUES ('LONELY')")
    dg.materialize([agent_stats_cache], resources={"postgres": postgres}, instance=instance)
    row = sql(postgres, "SELECT total_tasks, success_rate, avg_duration_ms, last_active, current_status FROM agent_stats_cache")
    assert row == [(0, Decimal("0.00"), None, None, "idle")]
