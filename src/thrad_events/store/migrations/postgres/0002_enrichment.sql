-- Server-side enrichment beyond 0001 (as sqlite/0002): user-agent versions, device type and
-- bot flag (0/1, smallint as SQLite's integer), and the campaign fields read from page_url's
-- query (landing_url's for clicks).
ALTER TABLE events
    ADD COLUMN ua_browser_version text,
    ADD COLUMN ua_os_version text,
    ADD COLUMN ua_device_type text,
    ADD COLUMN ua_is_bot smallint,
    ADD COLUMN utm_source text,
    ADD COLUMN utm_medium text,
    ADD COLUMN utm_campaign text,
    ADD COLUMN utm_term text,
    ADD COLUMN utm_content text,
    ADD COLUMN thrad_click_id text;

ALTER TABLE conversions
    ADD COLUMN ua_browser_version text,
    ADD COLUMN ua_os_version text,
    ADD COLUMN ua_device_type text,
    ADD COLUMN ua_is_bot smallint,
    ADD COLUMN utm_source text,
    ADD COLUMN utm_medium text,
    ADD COLUMN utm_campaign text,
    ADD COLUMN utm_term text,
    ADD COLUMN utm_content text,
    ADD COLUMN thrad_click_id text;

ALTER TABLE clicks
    ADD COLUMN ua_browser_version text,
    ADD COLUMN ua_os_version text,
    ADD COLUMN ua_device_type text,
    ADD COLUMN ua_is_bot smallint,
    ADD COLUMN utm_source text,
    ADD COLUMN utm_medium text,
    ADD COLUMN utm_campaign text,
    ADD COLUMN utm_term text,
    ADD COLUMN utm_content text,
    ADD COLUMN thrad_click_id text;
