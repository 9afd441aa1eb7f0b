-- The browser Tag registry (as sqlite/0009): a tag belongs to one partner and lists the origins
-- (scheme://host[:port]) whose pages may send for it; daily_cap bounds a UTC day's requests.
CREATE TABLE tags (
    tag_id text PRIMARY KEY,
    partner_id text NOT NULL REFERENCES partners (partner_id),
    daily_cap integer,
    created_at timestamptz NOT NULL
);

CREATE TABLE tag_origins (
    tag_id text NOT NULL REFERENCES tags (tag_id),
    origin text NOT NULL,
    PRIMARY KEY (tag_id, origin)
);
CREATE INDEX tag_origins_origin ON tag_origins (origin);
