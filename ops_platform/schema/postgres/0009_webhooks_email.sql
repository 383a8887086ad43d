-- Seed 001: outgoing webhooks and the email queue, fed by the events outbox.

-- The writing transaction's id on every event. Ids (bigserial) can commit out of order; transaction
-- ids below the oldest running transaction (pg_snapshot_xmin) belong to finished transactions only,
-- so the consumer reads in (txid, id) order up to that bound and never steps over a late commit.
ALTER TABLE events_outbox ADD COLUMN txid xid8 NOT NULL DEFAULT pg_current_xact_id();
CREATE INDEX events_outbox_txid_id ON events_outbox (txid, id);

CREATE TABLE webhooks (
    id          bigserial PRIMARY KEY,
    url         text NOT NULL CHECK (url ~ '^https?://'),
    secret      text NOT NULL CHECK (length(secret) >= 16),   -- HMAC-SHA256 key; never logged
    events      text[] NOT NULL DEFAULT '{}',                 -- event names it wants; empty: all
    active      boolean NOT NULL DEFAULT true,
    created_at  timestamptz NOT NULL DEFAULT now()
);

-- One row per HTTP attempt: the delivery log of the seed.
CREATE TABLE webhook_deliveries (
    id           bigserial PRIMARY KEY,
    event_id     bigint NOT NULL,
    webhook_id   bigint NOT NULL REFERENCES webhooks (id) ON DELETE CASCADE,
    attempt      int NOT NULL CHECK (attempt >= 1),
    status_code  int,                  -- NULL: no HTTP answer (timeout, refused)
    error        text,
    duration_ms  int NOT NULL,
    success      boolean NOT NULL,
    created_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, webhook_id, attempt)
);
CREATE INDEX webhook_deliveries_webhook ON webhook_deliveries (webhook_id, created_at);

-- One row per email of an event (idx: its place in the event). Written before the send and
-- updated after it; the unique key is also the provider's idempotency key event:<id>:<idx>.
CREATE TABLE email_deliveries (
    id           bigserial PRIMARY KEY,
    event_id     bigint NOT NULL,
    idx          int NOT NULL,
    recipients   text[] NOT NULL DEFAULT '{}',
    subject      text NOT NULL DEFAULT '',
    status       text NOT NULL CHECK (status IN ('pending', 'sent', 'failed', 'invalid')),
    provider_id  text,
    error        text,
    created_at   timestamptz NOT NULL DEFAULT now(),
    updated_at   timestamptz NOT NULL DEFAULT now(),
    UNIQUE (event_id, idx)
);
CREATE INDEX email_deliveries_status ON email_deliveries (status, created_at);
CREATE TRIGGER email_deliveries_touch BEFORE UPDATE ON email_deliveries
    FOR EACH ROW EXECUTE FUNCTION ops_touch_updated_at();

-- "Handled exactly once": one row per consumed event, written when its handling is over.
CREATE TABLE events_handled (
    event_id    bigint PRIMARY KEY,
    name        text NOT NULL,
    run_id      text,
    outcome     text NOT NULL CHECK (outcome IN ('delivered', 'failed', 'invalid', 'ignored')),
    error       text,
    handled_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX events_handled_outcome ON events_handled (outcome, handled_at);
