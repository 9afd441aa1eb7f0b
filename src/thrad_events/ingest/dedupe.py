"""Dedupe keys: which request fields make two events or two conversions the same one."""

from __future__ import annotations

from thrad_events.errors import ValidationFailed, field_error

MAX_IDEMPOTENCY_KEY_CHARS = 256


def conversion_dedupe_key(idempotency_key: str | None, event_id: str | None) -> str | None:
    """The Idempotency-Key header, else the body's event_id (the header takes precedence)."""
    if idempotency_key is not None:
        key = idempotency_key.strip()
        if len(key) > MAX_IDEMPOTENCY_KEY_CHARS:
            raise field_error(
                ValidationFailed,
                "Idempotency-Key",
                f"must be at most {MAX_IDEMPOTENCY_KEY_CHARS} characters",
            )
        if key:
            return key
    return event_id
