"""A browser conversion's proof of its click: thrad_sig over (click_id, thrad_exp), not expired."""

from __future__ import annotations

import pytest

from thrad_events.errors import BadClickSignature
from thrad_events.ingest.clicklinks import check_click_signature, click_signature

SECRET = "unit-click-secret-0123456789"
CLICK = "11111111-1111-4111-8111-111111111111"
NOW = 1_800_000_000


def test_a_signature_minted_for_the_click_verifies() -> None:
    sig = click_signature(SECRET, CLICK, NOW + 60)
    check_click_signature(SECRET, CLICK, NOW + 60, sig, NOW)
    check_click_signature(SECRET, CLICK, str(NOW + 60), sig, NOW)  # as the URL carried it


@pytest.mark.parametrize(
    ("exp", "sig", "why"),
    [
        (NOW + 60, click_signature(SECRET, CLICK, NOW + 61), "signed for another expiry"),
        (NOW + 60, click_signature("another-secret-0123456", CLICK, NOW + 60), "another key"),
        (NOW - 1, click_signature(SECRET, CLICK, NOW - 1), "expired"),
        (NOW, click_signature(SECRET, CLICK, NOW), "expires now"),
        (NOW + 60, None, "no signature"),
        (NOW + 60, "", "empty signature"),
        (None, click_signature(SECRET, CLICK, NOW + 60), "no expiry"),
        (True, click_signature(SECRET, CLICK, 1), "a boolean expiry"),
        ("1e3", "x", "not digits"),
        (NOW + 60, "é" * 64, "not hex"),
    ],
)
def test_a_proof_that_fails_is_refused(exp: object, sig: object, why: str) -> None:
    with pytest.raises(BadClickSignature):
        check_click_signature(SECRET, CLICK, exp, sig, NOW)
