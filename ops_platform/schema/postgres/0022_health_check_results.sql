-- Seed 002 healthCheck: each run's status and table sizes, its "example output", kept for the monitor
-- ("alert on 'error' or repeated 'warning'") and the dashboard.
CREATE TABLE health_check_results (
    id                    bigserial PRIMARY KEY,
    ts                    timestamptz NOT NULL DEFAULT now(),
    status                text NOT NULL CHECK (status IN ('healthy', 'warning', 'error')),
    build_table_size      bigint,
    task_table_size       bigint,
    execution_table_size  bigint,
    activity_table_size   bigint,
    user_table_size       bigint,
    error                 text
);
CREATE INDEX health_check_results_ts ON health_check_results (ts);
