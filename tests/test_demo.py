"""Demo data: deterministic for a seed, sized by the scale knob, loaded in bulk."""

from datetime import UTC, datetime

from helpers import sql

from ops_platform.demo.generate import generate

NOW = datetime(2026, 11, 1, 9, 30, tzinfo=UTC)
FINGERPRINT = """
SELECT (SELECT md5(string_agg(agent_name || status || created_at::text, ',' ORDER BY id)) FROM tasks),
       (SELECT md5(string_agg(prd_name || status || started_at::text || coalesce(cost_usd::text, ''), ',' ORDER BY id)) FROM builds),
       (SELECT sum(duration_ms) FROM executions)
"""


def test_same_seed_same_rows_and_scale_sets_the_size(postgres):
    counts = generate(postgres, scale=5_000, now=NOW)
    first = sql(postgres, FINGERPRINT)
    generate(postgres, scale=5_000, now=NOW)  # replaces, does not append
    assert sql(postgres, FINGERPRINT) == first
    assert sql(postgres, "SELECT count(*) FROM tasks")[0][0] == counts["tasks"] == 5_000
    generate(postgres, scale=5_000, now=NOW, seed=8)
    assert sql(postgres, FINGERPRINT) != first


def test_some_builds_are_stalled_and_some_are_recent(postgres):
    generate(postgres, scale=2_000, now=datetime.now(UTC))
    stalled, recent = sql(postgres, """
        SELECT count(*) FILTER (WHERE started_at < now() - interval '30 minutes'),
               count(*) FILTER (WHERE started_at >= now() - interval '30 minutes')
        FROM builds WHERE status = 'running'""")[0]
    assert stalled > 0 and recent > 0
