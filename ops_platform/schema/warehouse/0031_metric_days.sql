-- Seed 000 daily insights (issue 12): each workspace's metric points rolled up per UTC day, the input of the
-- statistical insight generator. A generation run replaces its window's rows (28 days of baseline + the day).
CREATE TABLE IF NOT EXISTS metric_days (
    workspace_id  Int64,
    metric        LowCardinality(String),
    day           Date,
    value         Float64,
    points        UInt32
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(day)
ORDER BY (workspace_id, metric, day)
