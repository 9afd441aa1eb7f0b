"""instants.py: the one written form of a time, and the shown form of a client's own time."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from thrad_events.instants import format_time, show_time, shown_time


@pytest.mark.parametrize(
    ("moment", "written", "shown"),
    [
        (
            datetime(2026, 2, 19, 18, tzinfo=UTC),
            "2026-02-19T18:00:00.000000Z",
            "2026-02-19T18:00:00Z",
        ),
        (
            datetime(2026, 2, 19, 18, 0, 0, 250000, tzinfo=UTC),
            "2026-02-19T18:00:00.250000Z",
            "2026-02-19T18:00:00.250000Z",
        ),
        (
            datetime(2026, 2, 19, 20, 0, 0, 1, tzinfo=timezone(timedelta(hours=2))),
            "2026-02-19T18:00:00.000001Z",
            "2026-02-19T18:00:00.000001Z",
        ),
        (datetime(5, 1, 1, tzinfo=UTC), "0005-01-01T00:00:00.000000Z", "0005-01-01T00:00:00Z"),
    ],
)
def test_an_instant_is_written_in_utc_at_fixed_width_and_shown_without_a_zero_fraction(
    moment: datetime, written: str, shown: str
) -> None:
    assert format_time(moment) == written
    assert len(written) == len("2026-02-19T18:00:00.000000Z")
    assert show_time(moment) == shown_time(written) == shown
    # The shown form is what Python's own ISO form of the UTC instant is.
    assert shown == moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def test_written_times_sort_as_text_in_the_order_of_their_instants() -> None:
    start = datetime(2026, 2, 19, 18, tzinfo=UTC)
    moments = [start + timedelta(microseconds=step) for step in (0, 1, 999_999, 1_000_000)]
    assert sorted(format_time(m) for m in reversed(moments)) == [format_time(m) for m in moments]


def test_a_time_written_before_times_had_one_width_is_shown_as_it_is() -> None:
    assert shown_time("2026-02-19T18:00:55Z") == "2026-02-19T18:00:55Z"


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 2, 19, 23, 30, 0, 5, tzinfo=timezone(timedelta(hours=-5))),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=1))),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_an_instant_with_an_offset_is_written_as_its_utc_time(moment: datetime) -> None:
    assert format_time(moment) == moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def test_the_written_form_is_strftimes_over_many_moments() -> None:
    """The fast path (isoformat) writes what strftime would, for every year from 1000 on."""
    rng = random.Random(7)
    for _ in range(20_000):
        moment = datetime.fromtimestamp(rng.uniform(-2e9, 4e9), UTC)
        if rng.random() < 0.2:
            moment = moment.replace(microsecond=0)
        assert format_time(moment) == moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
