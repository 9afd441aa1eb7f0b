"""Conversion dedupe keys.

Seed: "Thrad dedupes S2S conversions using: 1. Idempotency-Key header or event_id field ...
If both Idempotency-Key and event_id are supplied, Idempotency-Key takes precedence."
"""

from __future__ import annotations

import pytest

from thrad_events.errors import ValidationFailed
from thrad_events.ingest.dedupe import MAX_IDEMPOTENCY_KEY_CHARS, conversion_dedupe_key


def test_idempotency_key_takes_precedence_over_event_id() -> None:
    """Seed: if both Idempotency-Key and event_id are supplied, Idempotency-Key takes precedence."""
    assert conversion_dedupe_key("order-123", "evt-9") == "order-123"


def test_event_id_is_the_key_without_an_idempotency_key() -> None:
    """Contract: the key is the Idempotency-Key header, else event_id."""
    assert conversion_dedupe_key(None, "evt-9") == "evt-9"


@pytest.mark.parametrize("header", ["", "   ", "\t"])
def test_blank_idempotency_key_falls_back_to_event_id(header: str) -> None:
    """A blank Idempotency-Key identifies nothing: event_id is the key."""
    assert conversion_dedupe_key(header, "evt-9") == "evt-9"


def test_neither_given_means_no_key() -> None:
    """Without Idempotency-Key and event_id there is no key (order_id may still dedupe)."""
    assert conversion_dedupe_key(None, None) is None


def test_idempotency_key_is_trimmed() -> None:
    """A retry whose header differs only by surrounding spaces is the same operation."""
    assert conversion_dedupe_key("  order-123 ", None) == "order-123"


def test_overlong_idempotency_key_is_422_naming_the_header() -> None:
    """Contract: a wrong format is a 422 validation_error naming the field."""
    with pytest.raises(ValidationFailed) as caught:
        conversion_dedupe_key("k" * (MAX_IDEMPOTENCY_KEY_CHARS + 1), None)
    assert caught.value.details[0].field == "Idempotency-Key"


def test_idempotency_key_at_the_limit_is_accepted() -> None:
    """The longest allowed Idempotency-Key is kept whole."""
    key = "k" * MAX_IDEMPOTENCY_KEY_CHARS
    assert conversion_dedupe_key(key, None) == key
