-- Seed 004 FinOps (issue 12): what AI calls and infrastructure cost, per tenant, for the daily cost
-- aggregation (warehouse table cost_daily). A tenant is the `scope` of its AI budgets (ai_budgets).
CREATE TABLE ai_usage (
    id             bigserial PRIMARY KEY,
    tenant         text NOT NULL,
    campaign_id    bigint REFERENCES campaigns (id) ON DELETE SET NULL,
    model          text NOT NULL,
    input_tokens   int NOT NULL DEFAULT 0 CHECK (input_tokens >= 0),
    output_tokens  int NOT NULL DEFAULT 0 CHECK (output_tokens >= 0),
    cost_usd       numeric(12, 6) NOT NULL CHECK (cost_usd >= 0),
    occurred_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX ai_usage_occurred ON ai_usage (occurred_at);

-- One bill line per day, tenant and service (compute, storage, egress, …), as the cloud bill splits it.
CREATE TABLE infra_costs (
    day       date NOT NULL,
    tenant    text NOT NULL,
    service   text NOT NULL,
    cost_usd  numeric(12, 4) NOT NULL CHECK (cost_usd >= 0),
    PRIMARY KEY (day, tenant, service)
);
