-- Rows that fire on their own cron in their own time zone: canvas digests (seed 000) and
-- scheduled notifications (seed 004). The sensor reads next_*_at; the run that delivers a due time
-- records it under a unique key (digest_sends, scheduled_fires), so each due time is delivered once.
-- A row whose cron or time zone is invalid says why in last_error and is skipped; the others go on.

CREATE TABLE digests (
    id            bigserial PRIMARY KEY,
    workspace_id  bigint NOT NULL DEFAULT 0,
    name          text NOT NULL,
    cron          text NOT NULL,                          -- five fields, wall-clock time in `timezone`
    timezone      text NOT NULL DEFAULT 'UTC',            -- IANA name, e.g. America/Chicago
    include       jsonb NOT NULL DEFAULT '{}'::jsonb,     -- what the digest holds (ops_platform/digests/content.py)
    channels      text[] NOT NULL DEFAULT '{email}' CHECK (cardinality(channels) > 0 AND channels <@ ARRAY['email', 'slack']),
    recipients    text[] NOT NULL DEFAULT '{}',
    enabled       boolean NOT NULL DEFAULT true,
    last_sent_at  timestamptz,                            -- the due time last delivered
    next_send_at  timestamptz,                            -- NULL: computed by the sensor from cron
    last_error    text,
    created_at    timestamptz NOT NULL DEFAULT now(),
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX digests_due ON digests (next_send_at) WHERE enabled;
CREATE TRIGGER digests_touch BEFORE UPDATE ON digests FOR EACH ROW EXECUTE FUNCTION ops_touch_updated_at();

CREATE TABLE digest_sends (
    digest_id        bigint NOT NULL REFERENCES digests (id) ON DELETE CASCADE,
    due_at           timestamptz NOT NULL,
    run_id           text,
    notification_id  bigint REFERENCES notifications (id),
    status           text NOT NULL,                       -- the notification's status: sent, failed, held...
    sent_at          timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (digest_id, due_at)                       -- one send per digest and due time
);

CREATE TABLE scheduled_notifications (
    id             bigserial PRIMARY KEY,
    name           text NOT NULL,
    cron           text NOT NULL,
    timezone       text NOT NULL DEFAULT 'UTC',
    type           text NOT NULL DEFAULT 'scheduled',
    severity       text NOT NULL DEFAULT 'INFO' CHECK (severity IN ('SEV0', 'SEV1', 'WARN', 'INFO')),
    title          text NOT NULL,
    body           text NOT NULL DEFAULT '',
    channels       text[] NOT NULL DEFAULT '{}',          -- empty: routed by severity
    recipients     text[] NOT NULL DEFAULT '{}',
    enabled        boolean NOT NULL DEFAULT true,
    next_fire_at   timestamptz,                           -- NULL: computed by the sensor from cron
    last_fired_at  timestamptz,                           -- the due time last fired
    last_error     text,
    created_at     timestamptz NOT NULL DEFAULT now(),
    updated_at     timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX scheduled_notifications_due ON scheduled_notifications (next_fire_at) WHERE enabled;
CREATE TRIGGER scheduled_notifications_touch BEFORE UPDATE ON scheduled_notifications
    FOR EACH ROW EXECUTE FUNCTION ops_touch_updated_at();

CREATE TABLE scheduled_fires (
    schedule_id      bigint NOT NULL REFERENCES scheduled_notifications (id) ON DELETE CASCADE,
    due_at           timestamptz NOT NULL,
    run_id           text,
    notification_id  bigint REFERENCES notifications (id),
    status           text NOT NULL,
    fired_at         timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (schedule_id, due_at)                     -- one fire per schedule and due time
);

-- Seed 003's daily digest: one row per local calendar day, recorded in the same transaction that
-- marks the waiting messages it carries as 'digested'; notification_id is filled once it is sent.
CREATE TABLE daily_digests (
    day              date PRIMARY KEY,                    -- exactly once a day
    title            text NOT NULL,
    body             text NOT NULL,
    meta             jsonb NOT NULL DEFAULT '{}'::jsonb,
    channels         text[] NOT NULL,
    recipients       text[] NOT NULL DEFAULT '{}',
    item_ids         bigint[] NOT NULL DEFAULT '{}',      -- the notifications it carries
    notification_id  bigint REFERENCES notifications (id),
    status           text,                                -- the notification's status once sent
    created_at       timestamptz NOT NULL DEFAULT now(),
    sent_at          timestamptz
);
