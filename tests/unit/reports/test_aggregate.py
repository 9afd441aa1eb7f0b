"""Report arithmetic: exact money, percentiles as PostgreSQL's percentile_cont computes them."""

from __future__ import annotations

from decimal import Decimal

import pytest

from thrad_events.money import plain_text
from thrad_events.reports.aggregate import (
    conversion_rate,
    exact_sum,
    percentile,
    time_to_convert,
)


def test_money_sums_are_exact_0_1_plus_0_2_is_0_3() -> None:
    assert plain_text(exact_sum(["0.1", "0.2"])) == "0.3"
    assert plain_text(exact_sum(["0.1"] * 10)) == "1.0"
    assert plain_text(exact_sum(["49.99", "0.01"])) == "50.00"


def test_money_sums_never_round_however_many_digits() -> None:
    big = "1" + "0" * 40
    assert plain_text(exact_sum([big, "0." + "0" * 39 + "1"])) == big + "." + "0" * 39 + "1"
    assert plain_text(exact_sum(["-5.25", "5.25"])) == "0.00"


def test_money_text_has_no_exponent() -> None:
    assert plain_text(exact_sum(["1E+2", "0.3"])) == "100.3"
    assert plain_text(Decimal("1E+2")) == "100"


def test_percentile_interpolates_between_closest_ranks() -> None:
    assert percentile([1800, 86400], 0.5) == 44100
    assert percentile([1800, 86400], 0.9) == pytest.approx(77940)
    assert percentile([1, 2, 3, 4], 0.5) == 2.5
    assert percentile([7], 0.99) == 7
    with pytest.raises(ValueError, match="no values"):
        percentile([], 0.5)


def test_time_to_convert_is_null_when_nothing_converted() -> None:
    assert time_to_convert([]) is None
    assert time_to_convert([86400, 1800]) == {"p50": 44100.0, "p90": 77940.0, "p99": 85554.0}


def test_conversion_rate() -> None:
    assert conversion_rate(1, 2) == 0.5
    assert conversion_rate(1, 3) == 0.333333
    assert conversion_rate(0, 0) == 0.0
