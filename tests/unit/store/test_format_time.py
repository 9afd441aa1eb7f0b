"""store/base.py format_time: every stored time as the same fixed-width text."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta, timezone

import pytest

from thrad_events.store.base import format_time


def strftime_text(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@pytest.mark.parametrize(
    "moment",
    [
        datetime(2026, 2, 19, 18, 0, 0, 123456, tzinfo=UTC),
        datetime(2026, 2, 19, 18, 0, 0, tzinfo=UTC),  # no fraction: still six digits
        datetime(2026, 2, 19, 23, 30, 0, 5, tzinfo=timezone(timedelta(hours=-5))),
        datetime(1999, 12, 31, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=1))),
        datetime(5, 1, 1, tzinfo=UTC),
        datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    ],
)
def test_format_time_is_strftimes_text(moment: datetime) -> None:
    assert format_time(moment) == strftime_text(moment)


def test_format_time_is_strftimes_text_over_many_moments() -> None:
    rng = random.Random(7)
    for _ in range(20_000):
        moment = datetime.fromtimestamp(rng.uniform(-2e9, 4e9), UTC)
        if rng.random() < 0.2:
            moment = moment.replace(microsecond=0)
        assert format_time(moment) == strftime_text(moment)
