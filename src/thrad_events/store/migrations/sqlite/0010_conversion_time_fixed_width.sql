-- conversion_time in the one written form of a time (instants.py: microseconds, fixed width),
-- as received_at already is. Rows written before carry a fraction only when one was sent: the
-- whole-second ones ("2026-02-19T18:00:00Z", 20 characters) get their zero fraction; the others
-- already have six digits.
UPDATE conversions
SET conversion_time = substr(conversion_time, 1, 19) || '.000000Z'
WHERE length(conversion_time) = 20 AND conversion_time LIKE '%Z';
