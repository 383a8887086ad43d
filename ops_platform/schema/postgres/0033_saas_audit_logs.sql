-- Seed 001 (SaaS app): the product's own audit log, `audit_logs`, deleted after 90 days at 03:00 UTC with
-- its system_logs (log_retention_job). Not seed 003's `audit_log` (the platform's audit trail), which is
-- never deleted: each seed's rule on its own table (maintenance/retention.py).
CREATE TABLE audit_logs (
    id          bigserial PRIMARY KEY,
    ts          timestamptz NOT NULL DEFAULT now(),
    actor       text NOT NULL,               -- who did it (user id or e-mail, "system")
    action      text NOT NULL,               -- e.g. user.created, webhook.updated
    target      text,                        -- what it was done to
    data        jsonb NOT NULL DEFAULT '{}'::jsonb
);
CREATE INDEX audit_logs_ts ON audit_logs (ts);
