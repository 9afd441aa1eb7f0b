-- Server-side enrichment beyond 0001: user-agent versions, device type and bot flag (0/1), and
-- the campaign fields read from page_url's query (landing_url's for clicks).
ALTER TABLE events ADD COLUMN ua_browser_version TEXT;
ALTER TABLE events ADD COLUMN ua_os_version TEXT;
ALTER TABLE events ADD COLUMN ua_device_type TEXT;
ALTER TABLE events ADD COLUMN ua_is_bot INTEGER;
ALTER TABLE events ADD COLUMN utm_source TEXT;
ALTER TABLE events ADD COLUMN utm_medium TEXT;
ALTER TABLE events ADD COLUMN utm_campaign TEXT;
ALTER TABLE events ADD COLUMN utm_term TEXT;
ALTER TABLE events ADD COLUMN utm_content TEXT;
ALTER TABLE events ADD COLUMN thrad_click_id TEXT;

ALTER TABLE conversions ADD COLUMN ua_browser_version TEXT;
ALTER TABLE conversions ADD COLUMN ua_os_version TEXT;
ALTER TABLE conversions ADD COLUMN ua_device_type TEXT;
ALTER TABLE conversions ADD COLUMN ua_is_bot INTEGER;
ALTER TABLE conversions ADD COLUMN utm_source TEXT;
ALTER TABLE conversions ADD COLUMN utm_medium TEXT;
ALTER TABLE conversions ADD COLUMN utm_campaign TEXT;
ALTER TABLE conversions ADD COLUMN utm_term TEXT;
ALTER TABLE conversions ADD COLUMN utm_content TEXT;
ALTER TABLE conversions ADD COLUMN thrad_click_id TEXT;

ALTER TABLE clicks ADD COLUMN ua_browser_version TEXT;
ALTER TABLE clicks ADD COLUMN ua_os_version TEXT;
ALTER TABLE clicks ADD COLUMN ua_device_type TEXT;
ALTER TABLE clicks ADD COLUMN ua_is_bot INTEGER;
ALTER TABLE clicks ADD COLUMN utm_source TEXT;
ALTER TABLE clicks ADD COLUMN utm_medium TEXT;
ALTER TABLE clicks ADD COLUMN utm_campaign TEXT;
ALTER TABLE clicks ADD COLUMN utm_term TEXT;
ALTER TABLE clicks ADD COLUMN utm_content TEXT;
ALTER TABLE clicks ADD COLUMN thrad_click_id TEXT;
