"""What an analyst sees on an asset page, written once for every materializable asset.

- **Group = domain**, one per team: `agent_builds` (seed 002), `campaigns` (seed 004's campaign and
  impact assets, wherever they are stored), `warehouse_sync` (the Postgres → ClickHouse copies), `sources`
  (seed 003's Notion, n8n, HubSpot and chat-log syncs). The key
  prefix says where an asset lives (`warehouse/…` in ClickHouse, `postgres/…` the operational tables),
  never which group it is in.
- **Owners** follow the group (`GROUP_OWNERS`).
- **Column schema** (`dagster/column_schema`) and **table name** (`dagster/table_name`) are declared in
  the definition, so the page shows them before the first run. The catalog is the truth:
  `tests/test_asset_pages.py` compares every declared column with Postgres' `pg_attribute` or
  ClickHouse's `system.columns` after the migrations, so a declaration cannot drift from its table.
  A synced table follows the application's Postgres schema, so its definition declares only the columns
  the sync itself guarantees, and each sync reports the whole schema it moved (`sync_schema`).
- **Row count** (`dagster/row_count`): each materialization reports it (`row_count`); which count is
  said where each asset reports it.
- **Freshness**: the seed's cadence plus slack (`fresh_within`); Dagster's freshness policies are in
  preview, and evaluated only with `freshness: enabled: true` in dagster.yaml.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import timedelta

import dagster as dg

GROUP_OWNERS = {
    "agent_builds": ["team:agent-builds"],
    "sources": ["team:ops-assistant"],  # seed 003's data sources
    "campaigns": ["team:campaigns"],
    "finops": ["team:finops"],
    "workspaces": ["team:canvas"],
    "warehouse_sync": ["team:data-platform"],
}
ROW_COUNT, COLUMN_SCHEMA, TABLE_NAME = "dagster/row_count", "dagster/column_schema", "dagster/table_name"


def fresh_within(cadence: timedelta, slack: timedelta) -> dg.FreshnessPolicy:
    """Fails when the last materialization is older than one cadence of its schedule plus slack (a run's
    own duration, a queue): a missed run turns the asset red, a slow one does not."""
    return dg.FreshnessPolicy.time_window(fail_window=cadence + slack)


EVERY_5_MINUTES = fresh_within(timedelta(minutes=5), timedelta(minutes=5))  # seed 002: agent stats ≤ 5 min stale
HOURLY = fresh_within(timedelta(hours=1), timedelta(minutes=30))
DAILY = fresh_within(timedelta(days=1), timedelta(hours=6))


def columns(*spec: tuple[str, str]) -> dg.TableSchema:
    """A table schema from (name, type) pairs, the types spelled as the catalog spells them."""
    return dg.TableSchema(columns=[dg.TableColumn(name, type) for name, type in spec])


def asset_page(group: str, table: str, schema: dg.TableSchema,
               freshness: dg.FreshnessPolicy | None = None) -> dict:
    """The @asset arguments of an asset page: group, its owners, the table and its columns, freshness."""
    return dict(group_name=group, owners=GROUP_OWNERS[group], freshness_policy=freshness,
                metadata={TABLE_NAME: table, COLUMN_SCHEMA: schema})


def row_count(rows: int) -> dict:
    return {ROW_COUNT: dg.MetadataValue.int(int(rows))}


def observed_schema(spec: Sequence[tuple[str, str]]) -> dict:
    """A schema read from a catalog at run time, as materialization metadata."""
    return {COLUMN_SCHEMA: columns(*spec)}
