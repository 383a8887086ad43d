-- The notification policy layer (seed 003) and canvas alert data (seed 000).

-- Every status a message can end in. 'grouped' and 'digested' point at the message that carried them.
ALTER TABLE notifications DROP CONSTRAINT notifications_status_check;
ALTER TABLE notifications ADD CONSTRAINT notifications_status_check CHECK (status IN (
    'pending', 'sent', 'failed',
    'held',          -- quiet hours: delivered when they end
    'digest',        -- waits for the daily digest
    'digested',      -- went out in the daily digest (delivered_in)
    'grouped',       -- went out inside one grouped message (delivered_in)
    'suppressed',    -- kill switch or comms off: never sent
    'rate_limited'   -- over its type's rate limit: never sent
));
ALTER TABLE notifications
    ADD COLUMN recipients   text[] NOT NULL DEFAULT '{}',
    ADD COLUMN requested_channels text[],   -- the sender's explicit channels; NULL: routed by severity
    ADD COLUMN delivered_in bigint REFERENCES notifications (id);
CREATE INDEX notifications_type_sent ON notifications (type, created_at) WHERE status IN ('sent', 'grouped', 'held');
CREATE INDEX notifications_waiting ON notifications (status, id) WHERE status IN ('held', 'digest');

-- Why each message was held back or not sent, duplicates included: the on-call's answer to
-- "why did I not get paged?".
CREATE TABLE suppression_log (
    id              bigserial PRIMARY KEY,
    ts              timestamptz NOT NULL DEFAULT now(),
    dedup_key       text NOT NULL,
    type            text NOT NULL,
    severity        text NOT NULL,
    decision        text NOT NULL,   -- held | digest | suppressed | rate_limited | grouped | duplicate
    reason          text NOT NULL,
    notification_id bigint REFERENCES notifications (id)
);
CREATE INDEX suppression_log_ts ON suppression_log (ts);
CREATE INDEX suppression_log_key ON suppression_log (dedup_key);

-- The outbox also keeps transactional traffic (emails of the events outbox) that has no notification row.
ALTER TABLE outbox_messages ALTER COLUMN notification_id DROP NOT NULL, ADD COLUMN ref text;
CREATE UNIQUE INDEX outbox_messages_ref ON outbox_messages (channel, ref) WHERE ref IS NOT NULL;

-- Canvas (seed 000): metric observations, and alert rules over named metrics. A rule is data only:
-- its metric names an entry of the code's metric registry, never SQL stored in the row.
CREATE TABLE metric_points (
    metric        text NOT NULL,
    workspace_id  bigint NOT NULL DEFAULT 0,
    ts            timestamptz NOT NULL,
    value         double precision NOT NULL
);
CREATE INDEX metric_points_metric_ts ON metric_points (metric, ts) INCLUDE (workspace_id, value);

CREATE TABLE alert_rules (
    id                 bigserial PRIMARY KEY,
    workspace_id       bigint NOT NULL DEFAULT 0,
    name               text NOT NULL,
    metric             text NOT NULL,              -- a name in the metric registry
    aggregation        text NOT NULL,              -- avg | sum | min | max | count | last
    window_minutes     int NOT NULL,
    operator           text NOT NULL,              -- > | >= | < | <= | = | !=
    threshold          double precision NOT NULL,
    cooldown_minutes   int NOT NULL DEFAULT 60,
    severity           text NOT NULL DEFAULT 'WARN',
    channels           text[] NOT NULL DEFAULT '{}',   -- empty: routed by severity
    recipients         text[] NOT NULL DEFAULT '{}',
    enabled            boolean NOT NULL DEFAULT true,
    last_value         double precision,
    last_evaluated_at  timestamptz,
    last_triggered_at  timestamptz,
    last_error         text,                       -- a broken rule says why here and is skipped
    created_at         timestamptz NOT NULL DEFAULT now(),
    updated_at         timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX alert_rules_enabled ON alert_rules (metric) WHERE enabled;
CREATE TRIGGER alert_rules_touch BEFORE UPDATE ON alert_rules FOR EACH ROW EXECUTE FUNCTION ops_touch_updated_at();
