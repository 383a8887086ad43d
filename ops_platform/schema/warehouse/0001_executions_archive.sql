-- Seed 002 execution compaction: executions older than 30 days move here, then leave Postgres.
CREATE TABLE IF NOT EXISTS executions_archive (
    id           Int64,
    agent_name   String,
    task_id      Nullable(Int64),
    duration_ms  Int32,
    ts           DateTime64(6, 'UTC'),
    archived_at  DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY id
