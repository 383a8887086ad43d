-- Seed 003 periodic scan: proposals made from patterns, at most 10 in any 60 minutes.
--
-- The cap is the database's: a BEFORE INSERT trigger takes a transaction lock on the proposals' quota,
-- counts the proposals created in the 60 minutes before now, and drops the row (RETURN NULL: the
-- INSERT reports it was not written) when 10 are there. The lock is held until the inserting
-- transaction ends, so concurrent scans are counted one after the other and together stay within 10.

CREATE TABLE proposals (
    id            bigserial PRIMARY KEY,
    pattern_kind  text NOT NULL,                 -- e.g. workflow_failing (ops_platform/scan/patterns.py)
    subject       text NOT NULL,                 -- what it is about: a workflow, an API, a memory key
    confidence    numeric(4, 3) NOT NULL CHECK (confidence BETWEEN 0.7 AND 1),
    title         text NOT NULL,
    body          text NOT NULL,
    evidence      jsonb NOT NULL DEFAULT '{}'::jsonb,
    status        text NOT NULL DEFAULT 'pending' CHECK (status IN ('pending', 'approved', 'rejected', 'expired')),
    created_at    timestamptz NOT NULL DEFAULT now(),
    decided_at    timestamptz
);
-- One open proposal per pattern: a pattern seen again while its proposal waits adds nothing.
CREATE UNIQUE INDEX proposals_one_pending ON proposals (pattern_kind, subject) WHERE status = 'pending';
CREATE INDEX proposals_created_at ON proposals (created_at);

CREATE TABLE proposal_quota (
    id               smallint PRIMARY KEY DEFAULT 1 CHECK (id = 1),
    per_hour         int NOT NULL DEFAULT 10 CHECK (per_hour >= 0)  -- seed 003: "Max 10 proposals per hour"
);
INSERT INTO proposal_quota DEFAULT VALUES;

CREATE FUNCTION ops_proposals_within_quota() RETURNS trigger AS $$
DECLARE
    cap int;
BEGIN
    SELECT per_hour INTO cap FROM proposal_quota WHERE id = 1 FOR UPDATE;  -- the quota lock, until commit
    NEW.created_at := clock_timestamp();                                    -- in lock order
    IF (SELECT count(*) FROM proposals WHERE created_at > NEW.created_at - interval '1 hour') >= cap THEN
        RETURN NULL;
    END IF;
    RETURN NEW;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER proposals_within_quota BEFORE INSERT ON proposals
    FOR EACH ROW EXECUTE FUNCTION ops_proposals_within_quota();
