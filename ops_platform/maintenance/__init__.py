"""Retention and archival: one policy per table (seeds 001, 002, 003), old rows moved to ClickHouse before deletion."""
