"""thrad-events: Thrad's server-to-server Events API.

The path of an event through the service, and what each stage may reject:

1. http/       reads the request: a declared body over the limit is a 413 before anything else.
2. auth/       checks the bearer key (cached a few seconds): missing, unknown, revoked or expired
               is a 401 with WWW-Authenticate.
3. ingest/validate.py  decodes the body into a msgspec Struct: not JSON is a 400 invalid_json, a
               missing required field a 400 missing_field, a wrong type or format a 422.
4. ingest/pipeline.py  applies the server's rules (tag_id derivation, channel, params stamping,
               params.extra) and enrich/ adds ip_address, sender_ip, geo_*, ua_*, utm_*
               (never rejects; consent may truncate the stored IP).
5. store/      group-commits the row; a unique constraint decides duplicates. A full queue or an
               unreachable database is a 503 with Retry-After; an unknown click_id a 404.
6. http/       answers only after the commit: 204 for collect, {"status": "ok" | "duplicate"}.

Whatever the end, once the key is known it is accounted for (ingest/delivery.py): the writer
counts stored and duplicate rows in their own transaction, a refusal is counted and (400, 404,
408, 413, 415, 422, 431) kept for GET /v1/api/rejections, a 429 counted per key and minute.
"""

__version__ = "0.1.0"
