-- Test keys and their rows (as sqlite/0007): rows sent with a test key carry test = true, never
-- dedupe against live rows (the flag joins every unique key), are left out of reports and
-- exports unless asked, and are deleted after THRAD_TEST_RETENTION_DAYS.
-- ADD COLUMN with a constant default rewrites no table (PostgreSQL 11+); IF NOT EXISTS lets the
-- columns and indexes below be made ahead of this migration (docs/deploy.md).
ALTER TABLE api_keys ADD COLUMN IF NOT EXISTS test boolean NOT NULL DEFAULT false;
ALTER TABLE events ADD COLUMN IF NOT EXISTS test boolean NOT NULL DEFAULT false;
ALTER TABLE conversions ADD COLUMN IF NOT EXISTS test boolean NOT NULL DEFAULT false;
ALTER TABLE clicks ADD COLUMN IF NOT EXISTS test boolean NOT NULL DEFAULT false;

-- New names, IF NOT EXISTS: on a large live table build them first without blocking writes
-- (CREATE UNIQUE INDEX CONCURRENTLY ... with these names, after the columns exist); this
-- migration then only drops the old ones.
CREATE UNIQUE INDEX IF NOT EXISTS events_dedupe_test
    ON events (partner_id, test, tag_id, event_id);
CREATE UNIQUE INDEX IF NOT EXISTS conversions_dedupe_key_test
    ON conversions (partner_id, test, dedupe_key);
CREATE UNIQUE INDEX IF NOT EXISTS conversions_order_test
    ON conversions (partner_id, test, click_id, event_type, order_id);
DROP INDEX IF EXISTS events_dedupe;
DROP INDEX IF EXISTS conversions_dedupe_key;
DROP INDEX IF EXISTS conversions_order;

-- What the retention deletes, oldest first; live rows are not in these indexes at all.
CREATE INDEX IF NOT EXISTS events_test_received_at ON events (received_at) WHERE test;
CREATE INDEX IF NOT EXISTS conversions_test_received_at ON conversions (received_at) WHERE test;
CREATE INDEX IF NOT EXISTS clicks_test_received_at ON clicks (received_at) WHERE test;
