-- The retry queue (seed 003 "Retry Queue Processor"): what the processor needs beyond the seed's columns.

ALTER TABLE retry_jobs
    ADD COLUMN dedup_key    text UNIQUE,   -- one unit of work is enqueued once, ever (NULL: no such promise)
    ADD COLUMN locked_by    text,          -- the run that claimed the job (status 'running')
    ADD COLUMN locked_at    timestamptz,   -- when; a claim older than the processor's timeout was abandoned
    ADD COLUMN completed_at timestamptz,
    ADD COLUMN notified_at  timestamptz,   -- a dead job's notification went to the notifier
    ADD CONSTRAINT retry_jobs_attempts_check CHECK (attempts >= 0 AND max_attempts >= 1);

CREATE INDEX retry_jobs_claimed ON retry_jobs (locked_at) WHERE status = 'running';
CREATE INDEX retry_jobs_dead_unnotified ON retry_jobs (id) WHERE status = 'dead' AND notified_at IS NULL;
