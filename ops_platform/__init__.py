"""ops_platform: one Dagster code location for the background jobs of five products."""

import warnings

import dagster as dg

# BackfillPolicy (single-run backfills) is beta in Dagster 1.13 and used on purpose.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
