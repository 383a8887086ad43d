-- Seed 004 synthetic monitoring: one row per check and probe, kept 90 days.
CREATE TABLE IF NOT EXISTS synthetic_results (
    ts           DateTime64(3, 'UTC'),
    check_name   LowCardinality(String),
    url          String,                      -- without credentials or query string
    status_code  Nullable(UInt16),            -- NULL: no answer (timeout, refused)
    latency_ms   Float64,
    ok           Bool,
    error        String DEFAULT '',
    run_id       String DEFAULT ''
)
ENGINE = MergeTree
PARTITION BY toDate(ts)
ORDER BY (check_name, ts)
TTL toDateTime(ts) + INTERVAL 90 DAY
