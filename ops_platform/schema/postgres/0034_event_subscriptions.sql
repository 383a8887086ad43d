-- Seed 004 event subscriptions (issue 12): what the handlers of kintell.session.completed, buddy.match.created
-- and user.profile.updated write. Each row is keyed by the provider's own id, so handling an event again
-- writes nothing new.

-- Analytics "update metrics" of a completed Kintell session: the session, and the volunteer activity it
-- counts as (mentoring hours: VIS, campaign metrics).
CREATE TABLE kintell_sessions (
    session_id    text PRIMARY KEY,
    volunteer_id  bigint NOT NULL REFERENCES volunteers (id),
    campaign_id   bigint REFERENCES campaigns (id) ON DELETE SET NULL,
    hours         numeric(6, 2) NOT NULL CHECK (hours >= 0),
    completed_at  timestamptz NOT NULL,
    activity_id   bigint REFERENCES volunteer_activities (id) ON DELETE SET NULL,
    event_id      bigint NOT NULL
);

-- Q2Q "extract evidence": the sentences of a session's feedback that state an outcome.
CREATE TABLE impact_evidence (
    session_id    text NOT NULL REFERENCES kintell_sessions (session_id) ON DELETE CASCADE,
    idx           int NOT NULL,
    kind          text NOT NULL,              -- skills | confidence | employment | wellbeing
    excerpt       text NOT NULL,
    extracted_at  timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (session_id, idx)
);

-- Analytics "update metrics" of a buddy match.
CREATE TABLE buddy_matches (
    match_id      text PRIMARY KEY,
    buddy_id      bigint NOT NULL REFERENCES volunteers (id),
    newcomer      text NOT NULL,
    campaign_id   bigint REFERENCES campaigns (id) ON DELETE SET NULL,
    matched_at    timestamptz NOT NULL,
    event_id      bigint NOT NULL
);

-- Unified Profile "update completeness".
ALTER TABLE volunteers ADD COLUMN profile jsonb NOT NULL DEFAULT '{}'::jsonb,
                       ADD COLUMN profile_completeness numeric(5, 2),
                       ADD COLUMN profile_updated_at timestamptz;
