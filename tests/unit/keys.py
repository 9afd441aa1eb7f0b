"""An API key record as the store hands it to the pipeline, for tests that need no store."""

from __future__ import annotations

from thrad_events.store.records import ApiKeyRecord


def api_key(key_id: str = "key_1", *, rate_limit: int | None = None) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=key_id,
        partner_id="ptn_1",
        partner_name="acme",
        label="test",
        key_hash="0" * 64,
        key_prefix="thr_0000",
        created_at="2026-01-01T00:00:00.000000Z",
        expires_at=None,
        revoked_at=None,
        last_used_at=None,
        rate_limit=rate_limit,
    )
