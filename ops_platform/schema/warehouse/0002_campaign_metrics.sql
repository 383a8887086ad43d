-- Seed 004 hourly campaign metric snapshots: one row per campaign and hour.
CREATE TABLE IF NOT EXISTS campaign_metrics_hourly (
    snapshot_hour      DateTime('UTC'),
    campaign_id        Int64,
    status             LowCardinality(String),
    seats_used         Int32,
    seat_capacity      Int32,
    credits_used       Decimal(14, 2),
    credit_budget      Decimal(12, 2),
    active_volunteers  Int32,
    hours_logged       Decimal(14, 2)
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(snapshot_hour)
ORDER BY (snapshot_hour, campaign_id);

-- Seed 004 VIS scores: one row per volunteer and day, reproducible for any past day.
CREATE TABLE IF NOT EXISTS vis_scores (
    score_date     Date,
    volunteer_id   Int64,
    score          Float64,
    activities     Int32,
    hours_total    Decimal(14, 2),
    half_life_days Float64
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(score_date)
ORDER BY (score_date, volunteer_id)
