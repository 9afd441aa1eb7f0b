-- The SQLite schema (migrations/sqlite/ 0001, 0003 and 0004) in PostgreSQL's types: timestamptz for
-- times, NUMERIC for money (exact, the digits kept), JSONB for objects. Dedupe lives only in
-- the unique indexes, so it holds across processes and nodes.
CREATE TABLE partners (
    partner_id text PRIMARY KEY,
    name text NOT NULL UNIQUE,
    created_at timestamptz NOT NULL
);

CREATE TABLE api_keys (
    key_id text PRIMARY KEY,
    partner_id text NOT NULL REFERENCES partners (partner_id),
    label text NOT NULL,
    key_hash text NOT NULL UNIQUE,
    key_prefix text NOT NULL,
    created_at timestamptz NOT NULL,
    expires_at timestamptz,
    revoked_at timestamptz,
    last_used_at timestamptz,
    rate_limit integer
);

CREATE TABLE settings (
    name text PRIMARY KEY,
    value text NOT NULL
);

CREATE TABLE events (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL,
    partner_id text NOT NULL,
    event_name text NOT NULL,
    tag_id text NOT NULL,
    event_id text,
    "timestamp" bigint NOT NULL,
    page_url text,
    referrer text,
    user_agent text,
    channel text NOT NULL,
    session_id text,
    client_id text,
    attribution_type text,
    impression_id text,
    click_id text,
    bid_id text,
    impression_state text,
    view_time_ms bigint,
    consent jsonb,
    params jsonb NOT NULL,
    ip_address text,
    sender_ip text,
    geo_country text,
    geo_region text,
    geo_city text,
    geo_lat double precision,
    geo_lon double precision,
    ua_browser text,
    ua_os text,
    ua_device text
);
-- Collect dedupe per partner; NULL event_ids are distinct, so events without one are all kept.
CREATE UNIQUE INDEX events_dedupe ON events (partner_id, tag_id, event_id);
CREATE INDEX events_received_at ON events (received_at);
CREATE INDEX events_partner_received_at ON events (partner_id, received_at);
CREATE INDEX events_tag_received_at ON events (tag_id, received_at);
CREATE INDEX events_click ON events (click_id, partner_id) WHERE click_id IS NOT NULL;

CREATE TABLE clicks (
    click_id text PRIMARY KEY,
    received_at timestamptz NOT NULL,
    expires_at bigint NOT NULL,
    landing_url text NOT NULL,
    tag_id text,
    campaign_id text,
    ad_id text,
    bid_id text,
    impression_id text,
    referrer text,
    user_agent text,
    ip_address text,
    sender_ip text,
    geo_country text,
    geo_region text,
    geo_city text,
    geo_lat double precision,
    geo_lon double precision,
    ua_browser text,
    ua_os text,
    ua_device text
);
CREATE INDEX clicks_received_at ON clicks (received_at);
CREATE INDEX clicks_campaign_received_at ON clicks (campaign_id, received_at);

CREATE TABLE conversions (
    id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    received_at timestamptz NOT NULL,
    partner_id text NOT NULL,
    click_id text NOT NULL,
    conversion_time timestamptz NOT NULL,
    conversion_value numeric NOT NULL,
    currency text NOT NULL,
    event_type text NOT NULL,
    order_id text,
    event_id text,
    idempotency_key text,
    dedupe_key text,
    page_url text,
    referrer text,
    user_agent text,
    channel text NOT NULL,
    session_id text,
    client_id text,
    tag_id text,
    consent jsonb,
    params jsonb NOT NULL,
    ip_address text,
    sender_ip text,
    geo_country text,
    geo_region text,
    geo_city text,
    geo_lat double precision,
    geo_lon double precision,
    ua_browser text,
    ua_os text,
    ua_device text
);
CREATE UNIQUE INDEX conversions_dedupe_key ON conversions (partner_id, dedupe_key);
CREATE UNIQUE INDEX conversions_order ON conversions (partner_id, click_id, event_type, order_id);
CREATE INDEX conversions_received_at ON conversions (received_at);
CREATE INDEX conversions_partner_received_at ON conversions (partner_id, received_at);
CREATE INDEX conversions_tag_received_at ON conversions (tag_id, received_at);
CREATE INDEX conversions_click ON conversions (click_id);
