-- Seed 004: campaigns, seats, credits, volunteers and their activities, AI budgets.

CREATE TABLE campaigns (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL,
    status         text NOT NULL DEFAULT 'draft'
                   CHECK (status IN ('draft', 'scheduled', 'active', 'at_capacity', 'completed')),
    starts_on      date NOT NULL,
    ends_on        date NOT NULL CHECK (ends_on >= starts_on),
    seat_capacity  int NOT NULL CHECK (seat_capacity > 0),
    credit_budget  numeric(12, 2) NOT NULL CHECK (credit_budget >= 0),
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER campaigns_touch BEFORE INSERT OR UPDATE ON campaigns FOR EACH ROW EXECUTE FUNCTION ops_touch_updated_at();

CREATE TABLE volunteers (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- A seat is used from assigned_at until released_at (NULL: still held).
CREATE TABLE campaign_seats (
    id            bigserial PRIMARY KEY,
    campaign_id   bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    volunteer_id  bigint NOT NULL REFERENCES volunteers (id),
    assigned_at   timestamptz NOT NULL DEFAULT now(),
    released_at   timestamptz
);
CREATE INDEX campaign_seats_campaign ON campaign_seats (campaign_id);

-- Credits spent (positive) or refunded (negative) against a campaign's budget.
CREATE TABLE credit_ledger (
    id           bigserial PRIMARY KEY,
    campaign_id  bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    amount       numeric(12, 2) NOT NULL,
    kind         text NOT NULL DEFAULT 'spend',
    created_at   timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX credit_ledger_campaign ON credit_ledger (campaign_id, created_at);

CREATE TABLE volunteer_activities (
    id             bigserial PRIMARY KEY,
    volunteer_id   bigint NOT NULL REFERENCES volunteers (id),
    campaign_id    bigint REFERENCES campaigns (id) ON DELETE SET NULL,
    activity_type  text NOT NULL,
    hours          numeric(6, 2) NOT NULL CHECK (hours >= 0),
    occurred_at    timestamptz NOT NULL,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX volunteer_activities_occurred ON volunteer_activities (occurred_at);
CREATE INDEX volunteer_activities_updated ON volunteer_activities (updated_at);

-- Per-hour usage, one row per campaign and hour (upserted by the hourly assets).
CREATE TABLE campaign_usage (
    campaign_id      bigint NOT NULL REFERENCES campaigns (id) ON DELETE CASCADE,
    snapshot_hour    timestamptz NOT NULL,
    seats_used       int,
    seat_capacity    int,
    seat_utilisation numeric(7, 2),
    credits_used     numeric(14, 2),
    credit_budget    numeric(12, 2),
    credit_utilisation numeric(7, 2),
    PRIMARY KEY (campaign_id, snapshot_hour)
);

CREATE TABLE ai_budgets (
    id            bigserial PRIMARY KEY,
    scope         text NOT NULL,
    period        text NOT NULL CHECK (period IN ('daily', 'monthly')),
    limit_usd     numeric(12, 2) NOT NULL,
    spent_usd     numeric(12, 2) NOT NULL DEFAULT 0,
    period_start  date NOT NULL,
    UNIQUE (scope, period)
);
CREATE TABLE ai_budget_history (
    budget_id     bigint NOT NULL REFERENCES ai_budgets (id) ON DELETE CASCADE,
    period_start  date NOT NULL,
    limit_usd     numeric(12, 2) NOT NULL,
    spent_usd     numeric(12, 2) NOT NULL,
    reset_at      timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (budget_id, period_start)
);
