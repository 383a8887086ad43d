-- Seed 003 watchers read these; seed 004 synthetic checks may be kept here as well as in the environment.

-- One row per call to an external API (Notion, n8n, HubSpot, ...): volume for the cost watcher,
-- failures for the repeated-failures watcher.
CREATE TABLE api_calls (
    id           bigserial PRIMARY KEY,
    ts           timestamptz NOT NULL DEFAULT now(),
    source       text NOT NULL,               -- the API, e.g. hubspot
    endpoint     text NOT NULL,               -- the action, e.g. /crm/v3/objects/contacts
    ok           boolean NOT NULL,
    status_code  int,
    latency_ms   double precision,
    error        text
);
CREATE INDEX api_calls_ts ON api_calls (ts) INCLUDE (source, endpoint, ok);

-- The current window of each rate-limit bucket, kept up to date by the clients that spend it.
CREATE TABLE rate_limit_usage (
    bucket          text PRIMARY KEY,         -- e.g. notion, hubspot
    used            int NOT NULL DEFAULT 0 CHECK (used >= 0),
    limit_value     int NOT NULL CHECK (limit_value > 0),
    window_seconds  int NOT NULL DEFAULT 60 CHECK (window_seconds > 0),
    window_start    timestamptz NOT NULL DEFAULT now(),
    updated_at      timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER rate_limit_usage_touch BEFORE UPDATE ON rate_limit_usage
    FOR EACH ROW EXECUTE FUNCTION ops_touch_updated_at();

-- One database answer time per health-monitor tick: the latency watcher averages them.
CREATE TABLE db_latency_samples (
    ts          timestamptz NOT NULL DEFAULT now(),
    latency_ms  double precision NOT NULL CHECK (latency_ms >= 0)
);
CREATE INDEX db_latency_samples_ts ON db_latency_samples (ts);

-- Synthetic checks added without a deploy (OPS_SYNTHETIC_CHECKS holds the deployed ones).
CREATE TABLE synthetic_checks (
    name            text PRIMARY KEY,
    url             text NOT NULL CHECK (url ~ '^https?://'),
    expect_status   int NOT NULL DEFAULT 200 CHECK (expect_status BETWEEN 100 AND 599),
    max_latency_ms  int NOT NULL DEFAULT 3000 CHECK (max_latency_ms > 0),
    enabled         boolean NOT NULL DEFAULT true,
    created_at      timestamptz NOT NULL DEFAULT now()
);
