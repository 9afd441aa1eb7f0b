-- Collect dedupe by (tag_id, event_id) within one partner: another partner's key must never be
-- able to suppress this partner's events by sending the same ids first.
DROP INDEX events_dedupe;
CREATE UNIQUE INDEX events_dedupe ON events (partner_id, tag_id, event_id);
