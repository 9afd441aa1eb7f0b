-- Reports range on the event's own time by default (time_basis=event): an event's timestamp, a
-- conversion's conversion_time. The received_at indexes cannot serve that range, so without
-- these a partner's report over one day reads every row the partner ever sent.
CREATE INDEX IF NOT EXISTS events_partner_timestamp ON events (partner_id, "timestamp");
CREATE INDEX IF NOT EXISTS conversions_partner_conversion_time ON conversions (partner_id, conversion_time);
