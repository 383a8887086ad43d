"""Seed 004 FinOps: the cost aggregation job (a day of `warehouse/cost_daily`), from the UI, the schedule
or POST /v1/analytics/finops/aggregate."""

import dagster as dg

from ops_platform.assets.finops import cost_daily

cost_aggregation_job = dg.define_asset_job("cost_aggregation_job", selection=[cost_daily],
                                           description="Seed 004 FinOps: AI and infrastructure cost per tenant and day.")
