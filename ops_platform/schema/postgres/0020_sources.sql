-- Seed 003 data sources: per-source sync bookkeeping, what they store (memory_items), the chat logs
-- the assistant writes, and the rate-limit buckets every client process shares.

-- One row per source (seed 003 data_source_sync), written by every sync run.
CREATE TABLE data_source_sync (
    source_name             text PRIMARY KEY,
    last_sync_started_at    timestamptz,
    last_sync_completed_at  timestamptz,
    last_sync_success       boolean,
    items_synced            int NOT NULL DEFAULT 0 CHECK (items_synced >= 0),
    last_error              text,
    consecutive_failures    int NOT NULL DEFAULT 0 CHECK (consecutive_failures >= 0),
    consecutive_unreachable int NOT NULL DEFAULT 0 CHECK (consecutive_unreachable >= 0),
    watermark               timestamptz,   -- the newest change the last good sync saw: the next one's "since"
    updated_at              timestamptz NOT NULL DEFAULT now()
);
CREATE TRIGGER data_source_sync_touch BEFORE UPDATE ON data_source_sync
    FOR EACH ROW EXECUTE FUNCTION ops_touch_updated_at();

-- What the assistant knows. A changed item supersedes its current row (history kept, never deleted).
CREATE TABLE memory_items (
    id               bigserial PRIMARY KEY,
    key              text NOT NULL,               -- e.g. notion.page.<id>, hubspot.contact.<id>
    value            jsonb NOT NULL,
    authority        text NOT NULL CHECK (authority IN ('canonical', 'inferred')),
    source_type      text NOT NULL,               -- notion, hubspot, chat
    content_hash     text NOT NULL,               -- md5 of the value: "has it changed"
    version          int NOT NULL DEFAULT 1 CHECK (version >= 1),
    supersedes       bigint REFERENCES memory_items (id),
    created_at       timestamptz NOT NULL DEFAULT now(),
    superseded_at    timestamptz,
    supersede_reason text
);
CREATE UNIQUE INDEX memory_items_current ON memory_items (key) WHERE superseded_at IS NULL;
CREATE INDEX memory_items_superseded_at ON memory_items (superseded_at) WHERE superseded_at IS NOT NULL;

CREATE FUNCTION ops_memory_items_keep() RETURNS trigger AS $$
BEGIN
    RAISE EXCEPTION 'memory_items are never deleted (seed 003: archive or supersede instead)';
END $$ LANGUAGE plpgsql;
CREATE TRIGGER memory_items_keep BEFORE DELETE ON memory_items
    FOR EACH STATEMENT EXECUTE FUNCTION ops_memory_items_keep();

-- The fourth source: the assistant's own conversations, written by the chat front end.
CREATE TABLE chat_logs (
    id               bigserial PRIMARY KEY,
    conversation_id  text NOT NULL,
    role             text NOT NULL CHECK (role IN ('user', 'assistant', 'system')),
    content          text NOT NULL,
    ts               timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX chat_logs_ts ON chat_logs (ts);

-- A sliding-window log per rate limit, shared by every process: the start times of the last
-- `limit_value` requests. See ops_platform/sources/rate_limit.py.
CREATE TABLE rate_limit_buckets (
    bucket          text PRIMARY KEY,
    limit_value     int NOT NULL CHECK (limit_value > 0),
    window_seconds  int NOT NULL CHECK (window_seconds > 0),
    slots           timestamptz[] NOT NULL DEFAULT '{}'
);

-- n8n executions that ended in error, as the n8n sync fetched them: the periodic scan's failing-workflow
-- pattern and the daily digest read them.
CREATE TABLE n8n_executions (
    id           text PRIMARY KEY,             -- n8n's execution id
    workflow_id  text NOT NULL,
    status       text NOT NULL,
    started_at   timestamptz NOT NULL,
    stopped_at   timestamptz,
    synced_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX n8n_executions_started ON n8n_executions (started_at) INCLUDE (workflow_id, status);
