"""Money bounds and plain text: |value| < 10^15, at most 12 digits after the decimal point, and
exported in plain notation with the digits the client sent (README, POST /v1/api/conversion)."""

from __future__ import annotations

import time
from decimal import Decimal

import pytest

from thrad_events.money import NotAnAmount, exact_amount, plain_text


@pytest.mark.parametrize(
    ("sent", "plain"),
    [
        ("49.99", "49.99"),
        ("49.990", "49.990"),
        ("1e2", "100"),
        ("1.50e1", "15.0"),
        ("1E-7", "0.0000001"),
        ("0.000000000001", "0.000000000001"),
        ("999999999999999.999999999999", "999999999999999.999999999999"),
        ("-999999999999999", "-999999999999999"),
        ("0", "0"),
        ("-0.00", "0.00"),
        ("0e5", "0"),
        ("0e999999999", "0"),
    ],
)
def test_an_amount_keeps_the_digits_sent_in_plain_notation(sent: str, plain: str) -> None:
    assert plain_text(exact_amount(Decimal(sent))) == plain


@pytest.mark.parametrize(
    ("sent", "problem"),
    [
        ("1e15", "below 1e15"),
        ("-1e15", "below 1e15"),
        ("1000000000000000.0", "below 1e15"),
        ("1e400", "below 1e15"),
        ("0.0000000000001", "12 digits"),
        ("1e-13", "12 digits"),
        ("0E-13", "12 digits"),
        ("NaN", "finite"),
        ("-Infinity", "finite"),
    ],
)
def test_an_amount_out_of_bounds_is_refused(sent: str, problem: str) -> None:
    with pytest.raises(NotAnAmount, match=problem):
        exact_amount(Decimal(sent))


@pytest.mark.parametrize("sent", ["1e-300000000", "1e2000000", "1e999999999999999999"])
def test_hostile_exponents_are_refused_without_building_the_number(sent: str) -> None:
    """The probe's 1e-300000000 took gigabytes once a report summed it: the check reads the
    exponent only, so it answers at once."""
    started = time.perf_counter()
    with pytest.raises(NotAnAmount):
        exact_amount(Decimal(sent))
    assert time.perf_counter() - started < 1.0
