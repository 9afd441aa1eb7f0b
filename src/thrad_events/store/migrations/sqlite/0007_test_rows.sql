-- Test keys and their rows: a key made with `keys create --test` sends rows flagged test = 1.
-- Test rows never dedupe against live ones, so the flag joins every unique key; reports and
-- exports leave them out unless asked, and they are deleted after THRAD_TEST_RETENTION_DAYS.
ALTER TABLE api_keys ADD COLUMN test INTEGER NOT NULL DEFAULT 0;
ALTER TABLE events ADD COLUMN test INTEGER NOT NULL DEFAULT 0;
ALTER TABLE conversions ADD COLUMN test INTEGER NOT NULL DEFAULT 0;
ALTER TABLE clicks ADD COLUMN test INTEGER NOT NULL DEFAULT 0;

DROP INDEX events_dedupe;
CREATE UNIQUE INDEX events_dedupe ON events (partner_id, test, tag_id, event_id);
DROP INDEX conversions_dedupe_key;
CREATE UNIQUE INDEX conversions_dedupe_key ON conversions (partner_id, test, dedupe_key);
DROP INDEX conversions_order;
CREATE UNIQUE INDEX conversions_order
    ON conversions (partner_id, test, click_id, event_type, order_id);

-- What the retention deletes, oldest first; live rows are not in these indexes at all.
CREATE INDEX events_test_received_at ON events (received_at) WHERE test = 1;
CREATE INDEX conversions_test_received_at ON conversions (received_at) WHERE test = 1;
CREATE INDEX clicks_test_received_at ON clicks (received_at) WHERE test = 1;
