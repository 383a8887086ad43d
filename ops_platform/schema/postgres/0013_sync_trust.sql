-- Warehouse sync, trust at the edges (issue 9).
--
-- 1. Versions are write times, strictly increasing within a transaction. A row's `updated_at` (and a
--    tombstone's `deleted_at`) is the clock at the write, bumped one microsecond past the
--    transaction's previous stamp, instead of the transaction's start: two writes of one key in one
--    transaction, or by two transactions that waited on each other's row lock, are ordered as they
--    happened. The watermark's rule still holds: a stamp is never earlier than its transaction's
--    start, so every row stamped before the oldest open transaction's start is committed.
-- 2. A row whose key changes leaves a tombstone for its old key (the `<table>_rekeyed` trigger the
--    sync installs calls ops_sync_tombstone on UPDATE).
-- 3. Rows holding a value ClickHouse cannot store exactly are quarantined in sync_rejects.
-- 4. Schema changes the sync applied by itself, and the backfills they need, are on the record.

CREATE OR REPLACE FUNCTION ops_write_stamp() RETURNS timestamptz AS $$
DECLARE
    previous text := current_setting('ops.last_stamp', true);
    stamp timestamptz := clock_timestamp();
BEGIN
    IF previous IS NOT NULL AND previous <> '' AND stamp <= previous::timestamptz THEN
        stamp := previous::timestamptz + interval '1 microsecond';
    END IF;
    PERFORM set_config('ops.last_stamp', stamp::text, true);  -- transaction-local
    RETURN stamp;
END $$ LANGUAGE plpgsql;

CREATE OR REPLACE FUNCTION ops_touch_updated_at() RETURNS trigger AS $$
BEGIN
    NEW.updated_at := ops_write_stamp();
    RETURN NEW;
END $$ LANGUAGE plpgsql;

-- TG_ARGV: key column, partition column. On DELETE, and on an UPDATE that gives a row another key, the
-- old key gets a tombstone. The key is compared inside the function (not in the trigger's WHEN or
-- column list), so the trigger depends on no column and never blocks the application's
-- `ALTER COLUMN id TYPE bigint`. Retention jobs delete with ops.retention = 'on': the warehouse is where
-- old rows live on, so those deletes are not propagated.
CREATE OR REPLACE FUNCTION ops_sync_tombstone() RETURNS trigger AS $$
DECLARE
    old_key text := to_jsonb(OLD) ->> TG_ARGV[0];
BEGIN
    IF TG_OP = 'UPDATE' AND old_key IS NOT DISTINCT FROM (to_jsonb(NEW) ->> TG_ARGV[0]) THEN
        RETURN NULL;
    END IF;
    IF coalesce(current_setting('ops.retention', true), '') <> 'on' THEN
        INSERT INTO sync_tombstones (table_name, key_value, partition_value, deleted_at)
        VALUES (TG_TABLE_NAME, old_key::bigint, (to_jsonb(OLD) ->> TG_ARGV[1])::timestamptz, ops_write_stamp());
    END IF;
    RETURN NULL;
END $$ LANGUAGE plpgsql;

-- One open row per (table, key, column) ClickHouse cannot hold; resolved when the row is fixed or gone.
CREATE TABLE sync_rejects (
    id            bigserial PRIMARY KEY,
    table_name    text NOT NULL,
    key_value     bigint NOT NULL,
    column_name   text NOT NULL,
    value         text,                       -- Postgres' text of the value, cut at 200 characters
    reason        text NOT NULL,
    first_seen_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at  timestamptz NOT NULL DEFAULT now(),
    resolved_at   timestamptz
);
CREATE UNIQUE INDEX sync_rejects_open ON sync_rejects (table_name, key_value, column_name) WHERE resolved_at IS NULL;

-- What the sync decided when a synced table's columns changed, and the backfill it asked for.
CREATE TABLE sync_schema_changes (
    id            bigserial PRIMARY KEY,
    table_name    text NOT NULL,
    column_name   text NOT NULL,
    change        text NOT NULL CHECK (change IN ('added', 'retired', 'widened', 'refused')),
    detail        text NOT NULL,
    needs_backfill boolean NOT NULL DEFAULT false,
    backfill_run_id text,
    backfilled_at timestamptz,
    created_at    timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX sync_schema_changes_pending ON sync_schema_changes (table_name) WHERE needs_backfill AND backfilled_at IS NULL;
-- One refusal on the record per table, column and detail (the sync retries every 15 minutes).
CREATE UNIQUE INDEX sync_schema_changes_refused ON sync_schema_changes (table_name, column_name, detail)
    WHERE change = 'refused';

