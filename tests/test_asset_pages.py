"""What an analyst sees on an asset page: owners, description, columns, group, row count, freshness."""

from datetime import UTC, datetime, timedelta

import dagster as dg
from helpers import sql

from ops_platform.assets.agent_builds import agent_stats_cache
from ops_platform.assets.sync import WAREHOUSE_ASSETS
from ops_platform.definitions import defs
from ops_platform.demo.generate import generate
from ops_platform.framework.asset_pages import COLUMN_SCHEMA, GROUP_OWNERS, ROW_COUNT, TABLE_NAME
from ops_platform.notifications import NotifierResource
from ops_platform.sync import engine
from ops_platform.sync.spec import SYNCED_TABLES

GRAPH = defs.resolve_asset_graph()
PAGES = [GRAPH.get(key) for key in GRAPH.materializable_asset_keys]
NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)


def test_every_materializable_asset_has_owners_a_description_columns_and_a_domain_group():
    assert len(PAGES) == 19  # 3 seed-002 assets, 4 campaign assets, 6 synced tables, 4 seed-003 sources,
    # insights, cost_daily
    for page in PAGES:
        name = page.key.to_user_string()
        assert page.owners, name
        assert page.description, name
        assert len(page.metadata[COLUMN_SCHEMA].columns) >= 1, name
        assert page.group_name in GROUP_OWNERS, name
        assert page.owners == GROUP_OWNERS[page.group_name], name


def test_groups_are_domains_and_the_key_prefix_is_where_the_table_lives():
    groups = {page.key.to_user_string(): page.group_name for page in PAGES}
    assert groups["warehouse/vis_scores"] == groups["warehouse/campaign_metrics_hourly"] == groups["seat_usage"] \
        == "campaigns"
    assert {groups[f"warehouse/{t.name}"] for t in SYNCED_TABLES} == {"warehouse_sync"}
    assert {groups[k] for k in ("agent_stats_cache", "build_stats", "inactive_users")} == {"agent_builds"}


def catalog(postgres, warehouse, page) -> dict[str, str]:
    """The table's columns as its catalog has them: ClickHouse for `warehouse/…` keys, else Postgres."""
    table = page.metadata[TABLE_NAME]
    if page.key.path[0] == "warehouse":
        with warehouse.client() as ch:
            return dict(ch.query("SELECT name, type FROM system.columns WHERE database = currentDatabase() "
                                 "AND table = {t:String}", parameters={"t": table}).result_rows)
    return dict(sql(postgres, "SELECT attname, format_type(atttypid, atttypmod) FROM pg_attribute "
                              "WHERE attrelid = CAST(:t AS regclass) AND attnum > 0 AND NOT attisdropped", t=table))


def test_declared_columns_are_the_catalogs(postgres, warehouse):
    with warehouse.client() as ch:
        for table in SYNCED_TABLES:  # a synced table's ClickHouse table is made by its first sync
            engine.prepare(table, postgres, ch)
    for page in PAGES:
        declared = {c.name: c.type for c in page.metadata[COLUMN_SCHEMA].columns}
        actual = catalog(postgres, warehouse, page)
        assert declared == {name: actual.get(name) for name in declared}, page.key.to_user_string()


def test_freshness_policies_follow_the_seeds():
    fail_after = {page.key.to_user_string(): page.freshness_policy.fail_window.to_timedelta() for page in PAGES}
    assert fail_after["agent_stats_cache"] == timedelta(minutes=10)  # seed 002: */5, ≤ 5 min stale, + 5 min slack
    assert fail_after["build_stats"] == fail_after["seat_usage"] == timedelta(hours=1, minutes=30)
    assert fail_after["warehouse/campaign_metrics_hourly"] == timedelta(hours=1, minutes=30)
    assert fail_after["inactive_users"] == fail_after["warehouse/vis_scores"] == timedelta(hours=30)
    assert fail_after["warehouse/builds"] == timedelta(minutes=30)  # seed 004: */15
    assert fail_after["notion_sync"] == fail_after["hubspot_sync"] == timedelta(hours=1, minutes=30)  # seed 003
    assert fail_after["n8n_sync"] == fail_after["chat_logs_sync"] == timedelta(hours=1)  # */30 + 30 min


def test_a_cache_reports_its_row_count(postgres, instance):
    generate(postgres, scale=1_000, now=NOW)
    result = dg.materialize([agent_stats_cache], resources={"postgres": postgres}, instance=instance)
    metadata = result.asset_materializations_for_node("agent_stats_cache")[-1].metadata
    assert metadata[ROW_COUNT].value == sql(postgres, "SELECT count(*) FROM agent_stats_cache")[0][0] > 0


def test_a_sync_reports_row_count_its_whole_schema_and_figures_to_plot(postgres, warehouse, instance):
    generate(postgres, scale=4_000, now=NOW)
    result = dg.materialize([WAREHOUSE_ASSETS[0]], instance=instance, partition_key="2026-11-20",
                            run_config={"ops": {"warehouse__builds": {"config": {"mode": "incremental"}}}},
                            resources={"postgres": postgres, "warehouse": warehouse,
                                       "notifier": NotifierResource(postgres=postgres)})
    metadata = result.asset_materializations_for_node("warehouse__builds")[-1].metadata
    assert metadata[ROW_COUNT].value == metadata["run_rows"].value == 200  # a first sync: stored = moved
    postgres_columns = {name for name, in sql(postgres, "SELECT column_name FROM information_schema.columns "
                                                          "WHERE table_name = 'builds'")}
    reported = {c.name for c in metadata[COLUMN_SCHEMA].schema.columns}
    assert reported == postgres_columns | {"_version", "_deleted"}
    for figure in ("rows_per_second", "duration_seconds"):  # numbers: the Plots tab draws them run after run
        assert isinstance(metadata[figure].value, float), figure
