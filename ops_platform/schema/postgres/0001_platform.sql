-- Platform tables shared by every job: controls, audit, logs, events, retries, dead letters,
-- incidents and the notification log.

CREATE OR REPLACE FUNCTION ops_touch_updated_at() RETURNS trigger AS $$
BEGIN
    -- now() is the writing transaction's start time: the warehouse sync relies on it to know
    -- that every row older than the oldest open transaction is committed.
    NEW.updated_at := now();
    RETURN NEW;
END $$ LANGUAGE plpgsql;

CREATE TABLE controls (
    id               smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    kill_switch      boolean NOT NULL DEFAULT false,
    jobs_enabled     boolean NOT NULL DEFAULT true,
    comms_enabled    boolean NOT NULL DEFAULT true,
    write_enabled    boolean NOT NULL DEFAULT true,
    quiet_hours_start time,
    quiet_hours_end   time,
    quiet_hours_tz   text NOT NULL DEFAULT 'America/Chicago',
    updated_at       timestamptz NOT NULL DEFAULT now(),
    updated_by       text NOT NULL DEFAULT 'migration'
);
INSERT INTO controls (id) VALUES (1);

CREATE TABLE audit_log (
    id           bigserial PRIMARY KEY,
    ts           timestamptz NOT NULL DEFAULT now(),
    action       text NOT NULL,              -- job, schedule or sensor name
    action_type  text NOT NULL CHECK (action_type IN ('run', 'skip', 'refusal', 'control', 'system')),
    run_id       text,
    success      boolean NOT NULL,
    error        text,
    duration_ms  bigint,
    output_data  jsonb NOT NULL DEFAULT '{}'::jsonb,
    archived     boolean NOT NULL DEFAULT false
);
CREATE UNIQUE INDEX audit_log_one_outcome_per_run ON audit_log (run_id) WHERE action_type = 'run';
CREATE INDEX audit_log_ts ON audit_log (ts);
CREATE INDEX audit_log_action_ts ON audit_log (action, ts);

CREATE TABLE system_logs (
    id       bigserial PRIMARY KEY,
    ts       timestamptz NOT NULL DEFAULT now(),
    level    text NOT NULL DEFAULT 'INFO',
    source   text NOT NULL,
    message  text NOT NULL,
    data     jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX system_logs_ts ON system_logs (ts);

CREATE TABLE events_outbox (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,               -- e.g. webhook/send, email/send, campaign.status.changed
    payload     jsonb NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE retry_jobs (
    id            bigserial PRIMARY KEY,
    job_name      text NOT NULL,
    payload       jsonb NOT NULL DEFAULT '{}'::jsonb,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'running', 'completed', 'dead')),
    attempts      int NOT NULL DEFAULT 0,
    max_attempts  int NOT NULL DEFAULT 5,
    run_at        timestamptz NOT NULL DEFAULT now(),
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now(),
    archived      boolean NOT NULL DEFAULT false
);
CREATE INDEX retry_jobs_ready ON retry_jobs (run_at) WHERE status = 'pending';
CREATE TRIGGER retry_jobs_touch BEFORE UPDATE ON retry_jobs FOR EACH ROW EXECUTE FUNCTION ops_touch_updated_at();

CREATE TABLE dead_letters (
    id          bigserial PRIMARY KEY,
    source      text NOT NULL,               -- job or channel that gave up
    dedup_key   text NOT NULL UNIQUE,        -- one letter per failed unit of work
    payload     jsonb NOT NULL DEFAULT '{}'::jsonb,
    error       text NOT NULL,
    attempts    int NOT NULL,
    created_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at timestamptz
);

CREATE TABLE incidents (
    id           bigserial PRIMARY KEY,
    type         text NOT NULL,
    severity     text NOT NULL CHECK (severity IN ('SEV0', 'SEV1', 'WARN', 'INFO')),
    title        text NOT NULL,
    body         text NOT NULL DEFAULT '',
    status       text NOT NULL DEFAULT 'open' CHECK (status IN ('open', 'resolved')),
    dedup_key    text NOT NULL UNIQUE,
    created_at   timestamptz NOT NULL DEFAULT now(),
    resolved_at  timestamptz,
    archived     boolean NOT NULL DEFAULT false
);

-- One row per message the policy layer saw: what it decided and why. The unique dedup key is
-- the "exactly once" promise: two daemons by accident still notify once.
CREATE TABLE notifications (
    id           bigserial PRIMARY KEY,
    dedup_key    text NOT NULL UNIQUE,
    type         text NOT NULL,
    severity     text NOT NULL CHECK (severity IN ('SEV0', 'SEV1', 'WARN', 'INFO')),
    title        text NOT NULL,
    body         text NOT NULL DEFAULT '',
    channels     text[] NOT NULL DEFAULT '{}',
    status       text NOT NULL CHECK (status IN ('pending', 'sent', 'held', 'digest', 'suppressed', 'failed')),
    reason       text,
    attempts     int NOT NULL DEFAULT 0,
    meta         jsonb NOT NULL DEFAULT '{}'::jsonb,
    created_at   timestamptz NOT NULL DEFAULT now(),
    sent_at      timestamptz
);
CREATE INDEX notifications_status ON notifications (status, created_at);

-- The local outbox channel: where messages go until a real channel is configured.
CREATE TABLE outbox_messages (
    id              bigserial PRIMARY KEY,
    notification_id bigint NOT NULL REFERENCES notifications (id),
    channel         text NOT NULL,
    payload         jsonb NOT NULL,
    created_at      timestamptz NOT NULL DEFAULT now(),
    UNIQUE (notification_id, channel)
);

-- Incremental warehouse syncs: the committed watermark, and the window of a run in flight.
CREATE TABLE sync_state (
    table_name     text PRIMARY KEY,
    watermark      timestamptz,                 -- NULL: nothing synced yet
    pending_upper  timestamptz,
    rows_synced    bigint NOT NULL DEFAULT 0,
    updated_at     timestamptz NOT NULL DEFAULT now()
);
