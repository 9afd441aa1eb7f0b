-- Refused requests kept for a while (THRAD_REJECTIONS_RETENTION_DAYS), and the delivery counts:
-- what each partner sent, per minute and route, by outcome. Both are written by the group-commit
-- writer; stored and duplicate counts in the same transaction as the rows they count.
CREATE TABLE IF NOT EXISTS rejections (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    key_id TEXT NOT NULL,
    route TEXT NOT NULL,
    status INTEGER NOT NULL,
    code TEXT NOT NULL,
    message TEXT NOT NULL,
    details TEXT NOT NULL,
    request_id TEXT NOT NULL,
    body TEXT NOT NULL
);
CREATE INDEX IF NOT EXISTS rejections_partner_received ON rejections (partner_id, received_at);
CREATE INDEX IF NOT EXISTS rejections_received ON rejections (received_at);
CREATE INDEX IF NOT EXISTS rejections_key_received ON rejections (key_id, received_at);

-- key_id is '' for stored and duplicate (counted from the rows, which name no key); shard keeps
-- writers of different processes off each other's counter rows (always 0 on SQLite).
CREATE TABLE IF NOT EXISTS delivery_counts (
    partner_id TEXT NOT NULL,
    minute TEXT NOT NULL,
    route TEXT NOT NULL,
    outcome TEXT NOT NULL,
    key_id TEXT NOT NULL,
    shard INTEGER NOT NULL,
    count INTEGER NOT NULL,
    unkept INTEGER NOT NULL DEFAULT 0,
    PRIMARY KEY (partner_id, minute, route, outcome, key_id, shard)
);
CREATE INDEX IF NOT EXISTS delivery_counts_minute ON delivery_counts (minute);
