"""The stored tables' columns, in the order the stores write them and exports read them."""

from __future__ import annotations

ENRICHMENT_COLUMNS = (
    "ip_address",
    "sender_ip",
    "geo_country",
    "geo_region",
    "geo_city",
    "geo_lat",
    "geo_lon",
    "ua_browser",
    "ua_os",
    "ua_device",
    # Migration 0002: user-agent detail, and the campaign fields of page_url (landing_url for
    # clicks). ua_is_bot is 0/1.
    "ua_browser_version",
    "ua_os_version",
    "ua_device_type",
    "ua_is_bot",
    "utm_source",
    "utm_medium",
    "utm_campaign",
    "utm_term",
    "utm_content",
    "thrad_click_id",
)

EVENT_COLUMNS = (
    "received_at",
    "partner_id",
    "event_name",
    "tag_id",
    "event_id",
    "timestamp",
    "page_url",
    "referrer",
    "user_agent",
    "channel",
    "session_id",
    "client_id",
    "attribution_type",
    "impression_id",
    "click_id",
    "bid_id",
    "impression_state",
    "view_time_ms",
    "consent",
    "params",
    *ENRICHMENT_COLUMNS,
    # Migration 0007 (postgres 0005): sent with a test key (or a test click); see test_rows.py.
    "test",
)

CONVERSION_COLUMNS = (
    "received_at",
    "partner_id",
    "click_id",
    "conversion_time",
    "conversion_value",
    "currency",
    "event_type",
    "order_id",
    "event_id",
    "idempotency_key",
    "dedupe_key",
    "page_url",
    "referrer",
    "user_agent",
    "channel",
    "session_id",
    "client_id",
    "tag_id",
    "consent",
    "params",
    *ENRICHMENT_COLUMNS,
    "test",
)

CLICK_COLUMNS = (
    "click_id",
    "received_at",
    "expires_at",
    "landing_url",
    "tag_id",
    "campaign_id",
    "ad_id",
    "bid_id",
    "impression_id",
    "referrer",
    "user_agent",
    *ENRICHMENT_COLUMNS,
    "test",
)

# Columns holding JSON objects, and the one holding an exact decimal.
JSON_COLUMNS = frozenset({"consent", "params"})
TABLES = {"events": EVENT_COLUMNS, "conversions": CONVERSION_COLUMNS, "clicks": CLICK_COLUMNS}
