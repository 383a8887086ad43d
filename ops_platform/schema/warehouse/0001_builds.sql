-- Builds, synced from Postgres. One row per build after FINAL (ReplacingMergeTree on _version,
-- the Postgres updated_at in microseconds); daily partitions on started_at for exact backfills.
-- non_replicated_deduplication_window makes a retried identical insert block a no-op.
CREATE TABLE IF NOT EXISTS builds (
    id            Int64,
    prd_name      String,
    status        LowCardinality(String),
    started_at    DateTime64(6, 'UTC'),
    completed_at  Nullable(DateTime64(6, 'UTC')),
    duration_ms   Nullable(Int64),
    error         Nullable(String),
    cost_usd      Nullable(Decimal(12, 2)),
    meta          String,
    updated_at    DateTime64(6, 'UTC'),
    _version      UInt64
)
ENGINE = ReplacingMergeTree(_version)
PARTITION BY toYYYYMMDD(started_at)
ORDER BY id
SETTINGS non_replicated_deduplication_window = 1000
