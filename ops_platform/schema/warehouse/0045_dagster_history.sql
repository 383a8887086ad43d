-- Issue 13: Dagster's own history, archived before it leaves Dagster's storage (ops_platform/history/).
-- One row per run: `run` is Dagster's own serialisation of the DagsterRun (dagster.serialize_value), so a run
-- can be read back exactly; the other columns are there to query.
CREATE TABLE IF NOT EXISTS dagster_runs_archive (
    run_id       String,
    job_name     LowCardinality(String),
    status       LowCardinality(String),
    created_at   DateTime64(6, 'UTC'),
    started_at   Nullable(DateTime64(6, 'UTC')),
    ended_at     Nullable(DateTime64(6, 'UTC')),
    tags         String,                       -- JSON object
    events       UInt32,                       -- the run's events in Dagster when it was archived
    run          String,
    archived_at  DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(created_at)
ORDER BY run_id;

-- One row per event of an archived run, keyed by Dagster's storage id; `event` is the EventLogEntry as
-- dagster.serialize_value writes it.
CREATE TABLE IF NOT EXISTS dagster_events_archive (
    run_id       String,
    storage_id   UInt64,
    ts           DateTime64(6, 'UTC'),
    event_type   LowCardinality(String),       -- LOG for a plain log line
    step_key     String,
    asset_key    String,
    partition    String,
    level        LowCardinality(String),
    message      String,
    event        String,
    archived_at  DateTime64(6, 'UTC') DEFAULT now64(6)
)
ENGINE = ReplacingMergeTree
PARTITION BY toYYYYMM(ts)
ORDER BY (run_id, storage_id)
