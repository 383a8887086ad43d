-- Seed 002: hourly build statistics, one row per hour (the dashboard reads the newest).
CREATE TABLE build_stats_cache (
    snapshot_hour    timestamptz PRIMARY KEY,
    total_builds     bigint NOT NULL,
    completed_builds bigint NOT NULL,
    failed_builds    bigint NOT NULL,
    running_builds   bigint NOT NULL,
    success_rate     numeric(5, 2) NOT NULL,   -- completed / total × 100; 0 with no builds
    avg_duration_ms  numeric(14, 2),           -- over completed builds; NULL if none
    computed_at      timestamptz NOT NULL
);

CREATE INDEX user_profiles_last_active ON user_profiles (last_active_at);
CREATE INDEX audit_log_archivable ON audit_log (ts) WHERE NOT archived;
CREATE INDEX retry_jobs_archivable ON retry_jobs (updated_at) WHERE status = 'completed' AND NOT archived;
CREATE INDEX incidents_archivable ON incidents (resolved_at) WHERE status = 'resolved' AND NOT archived;
