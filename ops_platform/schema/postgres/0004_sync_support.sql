-- Warehouse sync support: every synced table needs an updated_at stamped by ops_touch_updated_at(),
-- and deletes leave a tombstone the sync carries to ClickHouse.

ALTER TABLE executions ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
ALTER TABLE agent_activity_feed ADD COLUMN updated_at timestamptz NOT NULL DEFAULT now();
CREATE INDEX executions_updated_at ON executions (updated_at);
CREATE INDEX agent_activity_feed_updated_at ON agent_activity_feed (updated_at);
CREATE INDEX tasks_updated_at ON tasks (updated_at);
CREATE INDEX tasks_created_at ON tasks (created_at);

CREATE TABLE sync_tombstones (
    table_name       text NOT NULL,
    key_value        bigint NOT NULL,
    partition_value  timestamptz NOT NULL,
    deleted_at       timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_tombstones_window ON sync_tombstones (table_name, deleted_at);

-- TG_ARGV: key column, partition column. Retention jobs delete with ops.retention = 'on': the
-- warehouse is where old rows live on, so those deletes are not propagated.
CREATE OR REPLACE FUNCTION ops_sync_tombstone() RETURNS trigger AS $$
BEGIN
    IF coalesce(current_setting('ops.retention', true), '') <> 'on' THEN
        INSERT INTO sync_tombstones (table_name, key_value, partition_value)
        VALUES (TG_TABLE_NAME, (to_jsonb(OLD) ->> TG_ARGV[0])::bigint, (to_jsonb(OLD) ->> TG_ARGV[1])::timestamptz);
    END IF;
    RETURN OLD;
END $$ LANGUAGE plpgsql;
