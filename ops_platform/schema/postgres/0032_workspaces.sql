-- Seed 000 (analytics workspaces, "Canvas"), issue 12: organisations (guests expire), their workspaces,
-- data connections, users with an AI proactivity preference, and the daily insights.
-- Everything of an organisation hangs from it by ON DELETE CASCADE: deleting an expired guest
-- organisation deletes its workspaces, connections, users and insights with it.
CREATE TABLE organisations (
    id          bigserial PRIMARY KEY,
    name        text NOT NULL,
    is_guest    boolean NOT NULL DEFAULT false,
    expires_at  timestamptz,                    -- guests: created_at + 7 days unless set otherwise
    created_at  timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX organisations_guest_expiry ON organisations (expires_at) WHERE is_guest;

CREATE TABLE users (
    id               bigserial PRIMARY KEY,
    organisation_id  bigint NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    email            text NOT NULL UNIQUE,
    ai_proactivity   text NOT NULL DEFAULT 'balanced' CHECK (ai_proactivity IN ('off', 'low', 'balanced', 'high')),
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX users_organisation ON users (organisation_id);

-- A workspace's insights follow its owner's AI proactivity preference.
CREATE TABLE workspaces (
    id               bigserial PRIMARY KEY,
    organisation_id  bigint NOT NULL REFERENCES organisations (id) ON DELETE CASCADE,
    owner_id         bigint REFERENCES users (id) ON DELETE SET NULL,
    name             text NOT NULL,
    created_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX workspaces_organisation ON workspaces (organisation_id);

CREATE TABLE connections (
    id            bigserial PRIMARY KEY,
    workspace_id  bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    kind          text NOT NULL,                -- postgres, bigquery, stripe, …
    active        boolean NOT NULL DEFAULT true,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX connections_active ON connections (workspace_id) WHERE active;

-- One day's insights of a workspace, rank 1 the best; a run for (workspace, day) replaces them all.
CREATE TABLE insights (
    workspace_id  bigint NOT NULL REFERENCES workspaces (id) ON DELETE CASCADE,
    day           date NOT NULL,
    rank          int NOT NULL CHECK (rank >= 1),
    kind          text NOT NULL,                -- mover | anomaly | …: what the generator found
    metric        text NOT NULL,
    title         text NOT NULL,
    score         double precision NOT NULL,    -- the generator's strength of the finding, higher is better
    details       jsonb NOT NULL DEFAULT '{}'::jsonb,
    generator     text NOT NULL,
    created_at    timestamptz NOT NULL DEFAULT now(),
    PRIMARY KEY (workspace_id, day, rank)
);

-- Canvas rows that name a workspace by id without a foreign key (metric points, alert rules, digests:
-- their workspace 0 is "the platform's own") go with their workspace, so the cascade from an
-- organisation reaches them too.
CREATE FUNCTION ops_workspace_deleted() RETURNS trigger AS $$
BEGIN
    DELETE FROM metric_points WHERE workspace_id = OLD.id;
    DELETE FROM alert_rules WHERE workspace_id = OLD.id;
    DELETE FROM digests WHERE workspace_id = OLD.id;
    RETURN OLD;
END $$ LANGUAGE plpgsql;
CREATE TRIGGER workspaces_deleted AFTER DELETE ON workspaces FOR EACH ROW EXECUTE FUNCTION ops_workspace_deleted();
