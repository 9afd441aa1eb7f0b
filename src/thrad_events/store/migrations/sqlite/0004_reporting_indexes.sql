-- What the reports read by (events by (partner_id, received_at) and the received_at indexes
-- exist already).
-- The funnel finds the clicks a partner's own events carry; most events carry none, so the
-- index holds only those that do and costs the other inserts nothing.
CREATE INDEX events_click ON events (click_id, partner_id) WHERE click_id IS NOT NULL;
-- A partner's conversions in a time range.
CREATE INDEX conversions_partner_received_at ON conversions (partner_id, received_at);
-- The funnel of one campaign (filter=campaign_id:...).
CREATE INDEX clicks_campaign_received_at ON clicks (campaign_id, received_at);
