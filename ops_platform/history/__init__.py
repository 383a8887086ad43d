"""Dagster's own history, bounded: old runs and their event logs archived to ClickHouse, then removed."""
