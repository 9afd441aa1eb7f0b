-- Partners, API keys, settings and the three row tables with their dedupe constraints.
CREATE TABLE partners (
    partner_id TEXT PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at TEXT NOT NULL
);

CREATE TABLE api_keys (
    key_id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners (partner_id),
    label TEXT NOT NULL,
    key_hash TEXT NOT NULL UNIQUE,
    key_prefix TEXT NOT NULL,
    created_at TEXT NOT NULL,
    expires_at TEXT,
    revoked_at TEXT,
    last_used_at TEXT,
    rate_limit INTEGER
);

CREATE TABLE settings (
    name TEXT PRIMARY KEY,
    value TEXT NOT NULL
);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    event_name TEXT NOT NULL,
    tag_id TEXT NOT NULL,
    event_id TEXT,
    timestamp INTEGER NOT NULL,
    page_url TEXT,
    referrer TEXT,
    user_agent TEXT,
    channel TEXT NOT NULL,
    session_id TEXT,
    client_id TEXT,
    attribution_type TEXT,
    impression_id TEXT,
    click_id TEXT,
    bid_id TEXT,
    impression_state TEXT,
    view_time_ms INTEGER,
    consent TEXT,
    params TEXT NOT NULL,
    ip_address TEXT,
    sender_ip TEXT,
    geo_country TEXT,
    geo_region TEXT,
    geo_city TEXT,
    geo_lat REAL,
    geo_lon REAL,
    ua_browser TEXT,
    ua_os TEXT,
    ua_device TEXT
);
-- NULL event_ids are distinct, so events without one are never deduplicated.
CREATE UNIQUE INDEX events_dedupe ON events (tag_id, event_id);
CREATE INDEX events_received_at ON events (received_at);
CREATE INDEX events_partner_received_at ON events (partner_id, received_at);

CREATE TABLE clicks (
    click_id TEXT PRIMARY KEY,
    received_at TEXT NOT NULL,
    expires_at INTEGER NOT NULL,
    landing_url TEXT NOT NULL,
    tag_id TEXT,
    campaign_id TEXT,
    ad_id TEXT,
    bid_id TEXT,
    impression_id TEXT,
    referrer TEXT,
    user_agent TEXT,
    ip_address TEXT,
    sender_ip TEXT,
    geo_country TEXT,
    geo_region TEXT,
    geo_city TEXT,
    geo_lat REAL,
    geo_lon REAL,
    ua_browser TEXT,
    ua_os TEXT,
    ua_device TEXT
);
CREATE INDEX clicks_received_at ON clicks (received_at);

CREATE TABLE conversions (
    id INTEGER PRIMARY KEY,
    received_at TEXT NOT NULL,
    partner_id TEXT NOT NULL,
    click_id TEXT NOT NULL,
    conversion_time TEXT NOT NULL,
    -- TEXT, not NUMERIC: SQLite's NUMERIC affinity would turn 49.99 into a binary float.
    conversion_value TEXT NOT NULL,
    currency TEXT NOT NULL,
    event_type TEXT NOT NULL,
    order_id TEXT,
    event_id TEXT,
    idempotency_key TEXT,
    dedupe_key TEXT,
    page_url TEXT,
    referrer TEXT,
    user_agent TEXT,
    channel TEXT NOT NULL,
    session_id TEXT,
    client_id TEXT,
    tag_id TEXT,
    consent TEXT,
    params TEXT NOT NULL,
    ip_address TEXT,
    sender_ip TEXT,
    geo_country TEXT,
    geo_region TEXT,
    geo_city TEXT,
    geo_lat REAL,
    geo_lon REAL,
    ua_browser TEXT,
    ua_os TEXT,
    ua_device TEXT
);
CREATE UNIQUE INDEX conversions_dedupe_key ON conversions (partner_id, dedupe_key);
CREATE UNIQUE INDEX conversions_order ON conversions (partner_id, click_id, event_type, order_id);
CREATE INDEX conversions_received_at ON conversions (received_at);
CREATE INDEX conversions_click ON conversions (click_id);
