-- The browser Tag registry: a tag belongs to one partner and lists the origins (scheme://host
-- [:port]) whose pages may send for it; daily_cap bounds what it may send in a UTC day.
CREATE TABLE tags (
    tag_id TEXT PRIMARY KEY,
    partner_id TEXT NOT NULL REFERENCES partners (partner_id),
    daily_cap INTEGER,
    created_at TEXT NOT NULL
);

CREATE TABLE tag_origins (
    tag_id TEXT NOT NULL REFERENCES tags (tag_id),
    origin TEXT NOT NULL,
    PRIMARY KEY (tag_id, origin)
);
-- CORS preflights ask whether any tag lists an origin.
CREATE INDEX tag_origins_origin ON tag_origins (origin);
