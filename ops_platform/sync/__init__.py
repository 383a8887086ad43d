"""Postgres → ClickHouse: incremental on a commit-safe updated_at watermark, partition-exact backfills."""
