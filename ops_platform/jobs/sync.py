"""The Postgres → ClickHouse sync of every synced table, as one asset job (seed 004)."""

import dagster as dg

from ops_platform.assets.sync import WAREHOUSE_ASSETS, WAREHOUSE_CHECKS

warehouse_sync_job = dg.define_asset_job("warehouse_sync_job",
                                         selection=dg.AssetSelection.assets(*WAREHOUSE_ASSETS)
                                         - dg.AssetSelection.checks(*WAREHOUSE_CHECKS),  # parity: on demand
                                         description="Postgres → ClickHouse sync of every synced table.")
