-- Seed 004 FinOps cost aggregation: one row per tenant and day (issue 12).
CREATE TABLE IF NOT EXISTS cost_daily (
    cost_date          Date,
    tenant             LowCardinality(String),
    ai_cost_usd        Decimal(14, 6),
    ai_calls           Int64,
    ai_tokens          Int64,
    infra_cost_usd     Decimal(14, 4),
    total_cost_usd     Decimal(16, 6),
    ai_daily_limit_usd Nullable(Decimal(12, 2))
)
ENGINE = MergeTree
PARTITION BY toYYYYMM(cost_date)
ORDER BY (cost_date, tenant)
