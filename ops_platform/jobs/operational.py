"""The health check of the operational tables (seed 002 healthCheck), as a job of asset checks."""

import dagster as dg

from ops_platform.assets.operational import table_size_checks

health_check_job = dg.define_asset_job("health_check_job", selection=dg.AssetSelection.checks(table_size_checks),
                                       description="Seed 002 healthCheck: table sizes and reachability.")
