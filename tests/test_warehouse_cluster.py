"""A ClickHouse cluster (issue 13): every statement the platform writes for one node has a cluster form that
ClickHouse's own parser accepts, and the one-node statements stay exactly as they were."""

import re
from datetime import UTC, datetime

import dagster as dg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import text

from ops_platform.assets.sync import WAREHOUSE_ASSETS
from ops_platform.demo.generate import generate
from ops_platform.notifications import NotifierResource
from ops_platform.resources.cluster import ClusterUnsupported, WarehouseLayout
from ops_platform.schema.migrate import _statements, load
from ops_platform.settings import ConfigError
from ops_platform.sync.spec import BUILDS

NOW = datetime(2026, 11, 20, 12, 0, tzinfo=UTC)
CLUSTER = WarehouseLayout("ops")
DDL = re.compile(r"\s*(CREATE|ALTER|DROP|DELETE|RENAME|TRUNCATE|EXCHANGE)\b", re.I)


def parsed(ch, statement: str) -> str:
    """ClickHouse's own formatting of `statement`; raises on a syntax error."""
    return ch.query("SELECT formatQuery({q:String})", parameters={"q": statement}).result_rows[0][0]


@pytest.fixture
def recorded(monkeypatch, warehouse) -> list[str]:
    """Every statement the platform sends through the ClickHouse client's `command` (still executed)."""
    with warehouse.client() as ch:
        client_class = type(ch)
    seen, original = [], client_class.command

    def command(self, cmd, *args, **kwargs):
        seen.append(cmd)
        return original(self, cmd, *args, **kwargs)

    monkeypatch.setattr(client_class, "command", command)
    return seen


def test_every_statement_a_sync_writes_has_a_cluster_form_clickhouse_parses(postgres, warehouse, instance, recorded):
    generate(postgres, scale=2_000, now=NOW)
    resources = {"postgres": postgres, "warehouse": warehouse, "notifier": NotifierResource(postgres=postgres)}
    run = {"ops": {"warehouse__builds": {"config": {"mode": "incremental"}}}}
    assert dg.materialize([WAREHOUSE_ASSETS[0]], instance=instance, resources=resources, partition_key="2026-11-20",
                          run_config=run).success
    with postgres.begin() as conn:  # schema evolution: an added, a widened and a dropped column
        conn.execute(text("ALTER TABLE builds ADD COLUMN reviewer text, ALTER COLUMN cost_usd TYPE numeric(14, 2)"))
    assert dg.materialize([WAREHOUSE_ASSETS[0]], instance=instance, resources=resources, partition_key="2026-11-20",
                          run_config=run).success
    with postgres.begin() as conn:
        conn.execute(text("ALTER TABLE builds DROP COLUMN reviewer"))
    assert dg.materialize([WAREHOUSE_ASSETS[0]], instance=instance, resources=resources, tags={
        "dagster/asset_partition_range_start": "2026-11-01",
        "dagster/asset_partition_range_end": "2026-11-19"}).success  # partition replaces through a staging table

    ddl = [s for s in recorded if DDL.match(s)]
    kinds = {" ".join(s.split()[:2]) for s in ddl}
    assert {"CREATE TABLE", "ALTER TABLE", "DROP TABLE"} <= kinds, kinds
    assert any("REPLACE PARTITION" in s for s in ddl), ddl
    assert any("ADD COLUMN" in s for s in ddl), ddl
    creates = {m["name"]: s for s in ddl if (m := re.match(r"CREATE TABLE IF NOT EXISTS (?P<name>\w+) \(", s))}
    with warehouse.client() as ch:
        for statement in ddl:
            assert WarehouseLayout(None).statements(statement) == [statement]  # one node: as written
            source = re.match(r"CREATE TABLE \w+ AS (\w+)$", statement)
            for clustered in CLUSTER.statements(statement, like=creates.get(source[1]) if source else None):
                assert " ON CLUSTER `ops`" in clustered
                assert "ON CLUSTER ops" in parsed(ch, clustered)


def test_a_synced_table_is_replicated_on_each_shard_with_a_distributed_table_sharded_by_its_key():
    from ops_platform.sync.types import Column

    columns = [Column("id", "bigint", False), Column("started_at", "timestamp with time zone", False),
               Column("updated_at", "timestamp with time zone", False)]
    local, front = CLUSTER.statements(BUILDS.ddl(columns))
    assert local.startswith("CREATE TABLE IF NOT EXISTS builds_local ON CLUSTER `ops` (")
    assert "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}', '{replica}', " \
           "_version, _deleted)\nPARTITION BY toYYYYMM(started_at)\nORDER BY (id)" in local
    assert front == ("CREATE TABLE IF NOT EXISTS builds ON CLUSTER `ops` AS builds_local\n"
                     "ENGINE = Distributed(`ops`, currentDatabase(), builds_local, cityHash64(id))")
    staging_local, staging = CLUSTER.statements("CREATE TABLE builds__staging_1 AS builds", like=BUILDS.ddl(columns))
    assert staging_local.startswith(
        "CREATE TABLE builds__staging_1_local ON CLUSTER `ops` AS builds_local\n"
        "ENGINE = ReplicatedReplacingMergeTree('/clickhouse/tables/{shard}/{database}/{table}'")
    assert "Distributed(`ops`, currentDatabase(), builds__staging_1_local, cityHash64(id))" in staging


def test_partition_replaces_and_deletes_act_on_every_shards_local_table():
    assert CLUSTER.statements("ALTER TABLE builds REPLACE PARTITION ID '202611' FROM builds__staging_ab") == [
        "ALTER TABLE builds_local ON CLUSTER `ops` REPLACE PARTITION ID '202611' FROM builds__staging_ab_local"]
    assert CLUSTER.statements("ALTER TABLE builds DROP PARTITION ID '202611'") == [
        "ALTER TABLE builds_local ON CLUSTER `ops` DROP PARTITION ID '202611'"]
    assert CLUSTER.statements("DELETE FROM vis_scores WHERE score_date = {d:Date}") == [
        "DELETE FROM vis_scores_local ON CLUSTER `ops` WHERE score_date = {d:Date}"]
    assert CLUSTER.statements("ALTER TABLE builds ADD COLUMN IF NOT EXISTS `x` Nullable(String) AFTER `id`") == [
        "ALTER TABLE builds_local ON CLUSTER `ops` ADD COLUMN IF NOT EXISTS `x` Nullable(String) AFTER `id`",
        "ALTER TABLE builds ON CLUSTER `ops` ADD COLUMN IF NOT EXISTS `x` Nullable(String) AFTER `id`"]
    assert CLUSTER.statements("DROP TABLE IF EXISTS `builds__staging_ab`") == [
        "DROP TABLE IF EXISTS builds__staging_ab ON CLUSTER `ops` SYNC",
        "DROP TABLE IF EXISTS builds__staging_ab_local ON CLUSTER `ops` SYNC"]
    assert CLUSTER.parts("builds") == "cluster('ops', currentDatabase(), 'builds_local')"
    assert WarehouseLayout(None).parts("builds") == "builds"


def test_every_warehouse_migration_has_a_cluster_form_clickhouse_parses(warehouse):
    with warehouse.client() as ch:
        for migration in load("warehouse"):
            for statement in _statements(migration.sql):
                local, front = CLUSTER.statements(statement)
                assert "ENGINE = Replicated" in parsed(ch, local)
                assert "ENGINE = Distributed(ops, currentDatabase()" in parsed(ch, front)


def test_a_statement_without_a_cluster_form_is_refused_by_name():
    with pytest.raises(ClusterUnsupported, match="no cluster form for this warehouse statement: 'OPTIMIZE TABLE x'"):
        CLUSTER.statements("OPTIMIZE TABLE x")
    with pytest.raises(ClusterUnsupported, match="needs the CREATE statement of builds"):
        CLUSTER.statements("CREATE TABLE s AS builds")
    assert WarehouseLayout(None).statements("OPTIMIZE TABLE x") == ["OPTIMIZE TABLE x"]


def test_the_cluster_comes_from_the_environment(monkeypatch, settings_env):
    monkeypatch.delenv("OPS_WAREHOUSE_CLUSTER", raising=False)
    settings_env("OPS_WAREHOUSE_CLUSTER", "")
    assert WarehouseLayout.from_settings() == WarehouseLayout(None)
    settings_env("OPS_WAREHOUSE_CLUSTER", "analytics_2")
    assert WarehouseLayout.from_settings() == WarehouseLayout("analytics_2")
    assert WarehouseLayout.from_settings().session_settings() == {"distributed_foreground_insert": 1}
    settings_env("OPS_WAREHOUSE_CLUSTER", "ops; DROP")
    with pytest.raises(ConfigError, match="OPS_WAREHOUSE_CLUSTER must be a cluster name"):
        WarehouseLayout.from_settings()


NAMES = st.from_regex(r"[a-z][a-z0-9_]{0,12}", fullmatch=True)
TYPES = st.sampled_from(["Int64", "String", "Nullable(String)", "DateTime64(6, 'UTC')", "Decimal(14, 2)",
                         "Array(Nullable(Int32))", "LowCardinality(String)"])


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(table=NAMES, columns=st.lists(st.tuples(NAMES, TYPES), min_size=1, max_size=6, unique_by=lambda c: c[0]),
       engine=st.sampled_from(["MergeTree", "ReplacingMergeTree", "ReplacingMergeTree(_version, _deleted)"]),
       keys=st.integers(1, 3))
def test_any_table_the_platform_could_write_has_a_parsing_cluster_form(warehouse, table, columns, engine, keys):
    order = [name for name, _ in columns[:keys]]
    body = ",\n    ".join(f"`{name}` {ch_type}" for name, ch_type in columns)
    statement = (f"CREATE TABLE IF NOT EXISTS {table} (\n    {body}\n)\nENGINE = {engine}\n"
                 f"ORDER BY ({', '.join(order)})")
    local, front = CLUSTER.statements(statement)
    assert local.startswith(f"CREATE TABLE IF NOT EXISTS {table}_local ON CLUSTER `ops` (")
    assert front.endswith(f"cityHash64({', '.join(order)}))")
    with warehouse.client() as ch:
        for clustered in (local, front):
            parsed(ch, clustered)
