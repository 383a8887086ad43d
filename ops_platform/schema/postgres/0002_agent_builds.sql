-- Seed 002: the agent build platform.

CREATE TABLE agents (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL UNIQUE,
    created_at  timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE tasks (
    id          bigserial PRIMARY KEY,
    agent_name  text NOT NULL,
    title       text NOT NULL DEFAULT '',
    status      text NOT NULL CHECK (status IN ('pending', 'running', 'done', 'failed')),
    created_at  timestamptz NOT NULL DEFAULT now(),
    updated_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX tasks_agent_status ON tasks (agent_name, status);

CREATE TABLE executions (
    id          bigserial PRIMARY KEY,
    agent_name  text NOT NULL,
    task_id     bigint,
    duration_ms integer NOT NULL CHECK (duration_ms >= 0),
    ts          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX executions_agent ON executions (agent_name);
CREATE INDEX executions_ts ON executions (ts);

CREATE TABLE builds (
    id            bigserial PRIMARY KEY,
    prd_name      text NOT NULL,
    status        text NOT NULL CHECK (status IN ('running', 'completed', 'failed')),
    started_at    timestamptz NOT NULL DEFAULT now(),
    completed_at  timestamptz,
    duration_ms   bigint,
    error         text,
    cost_usd      numeric(12, 2),
    meta          jsonb NOT NULL DEFAULT '{}'::jsonb,
    updated_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX builds_running ON builds (started_at) WHERE status = 'running';
CREATE INDEX builds_updated_at ON builds (updated_at);
CREATE INDEX builds_started_at ON builds (started_at);
CREATE TRIGGER builds_touch BEFORE INSERT OR UPDATE ON builds FOR EACH ROW EXECUTE FUNCTION ops_touch_updated_at();

CREATE TABLE agent_activity_feed (
    id          bigserial PRIMARY KEY,
    agent_name  text,
    event_type  text NOT NULL,
    details     text NOT NULL DEFAULT '',
    ts          timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX agent_activity_feed_ts ON agent_activity_feed (ts);

CREATE TABLE user_profiles (
    id              bigserial PRIMARY KEY,
    email           text NOT NULL UNIQUE,
    last_active_at  timestamptz,
    inactive_since  timestamptz
);

CREATE TABLE agent_stats_cache (
    agent_id        bigint PRIMARY KEY REFERENCES agents (id) ON DELETE CASCADE,
    agent_name      text NOT NULL,
    total_tasks     bigint NOT NULL,
    completed_tasks bigint NOT NULL,
    failed_tasks    bigint NOT NULL,
    success_rate    numeric(5, 2) NOT NULL,   -- completed / total * 100; 0 when there are no tasks
    avg_duration_ms numeric(14, 2),           -- NULL when the agent never executed
    last_active     timestamptz,
    current_status  text NOT NULL CHECK (current_status IN ('active', 'idle')),
    cached_at       timestamptz NOT NULL
);
