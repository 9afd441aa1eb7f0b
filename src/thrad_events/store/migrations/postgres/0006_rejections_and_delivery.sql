-- Refused requests kept for a while (THRAD_REJECTIONS_RETENTION_DAYS), and the delivery counts:
-- what each partner sent, per minute and route, by outcome. Both are written by the group-commit
-- writer; stored and duplicate counts in the same transaction as the rows they count.
CREATE TABLE IF NOT EXISTS rejections (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL,
    partner_id text NOT NULL,
    key_id text NOT NULL,
    route text NOT NULL,
    status integer NOT NULL,
    code text NOT NULL,
    message text NOT NULL,
    details text NOT NULL,
    request_id text NOT NULL,
    body text NOT NULL
);
CREATE INDEX IF NOT EXISTS rejections_partner_received ON rejections (partner_id, received_at);
CREATE INDEX IF NOT EXISTS rejections_received ON rejections (received_at);
CREATE INDEX IF NOT EXISTS rejections_key_received ON rejections (key_id, received_at);

-- key_id is '' for stored and duplicate (counted from the rows, which name no key); shard keeps
-- writers of different processes off each other's counter rows. minute is UTC 'YYYY-MM-DDTHH:MM'.
CREATE TABLE IF NOT EXISTS delivery_counts (
    partner_id text NOT NULL,
    minute text COLLATE "C" NOT NULL,
    route text NOT NULL,
    outcome text NOT NULL,
    key_id text NOT NULL,
    shard integer NOT NULL,
    count bigint NOT NULL,
    unkept bigint NOT NULL DEFAULT 0,
    PRIMARY KEY (partner_id, minute, route, outcome, key_id, shard)
);
CREATE INDEX IF NOT EXISTS delivery_counts_minute ON delivery_counts (minute);
