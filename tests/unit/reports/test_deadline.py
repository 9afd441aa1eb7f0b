"""A report's one budget: every long step of its Python work gives up once the budget is spent.

README: a report that runs longer than its budget (THRAD_REPORT_TIMEOUT_S) is stopped with a 503.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from thrad_events.deadline import Deadline, ReportTimedOut
from thrad_events.reports import dialects
from thrad_events.reports import sql as report_sql
from thrad_events.reports.aggregate import SUM_CHECK_EVERY, exact_sum
from thrad_events.reports.query import EventsQuery

SPENT = Deadline(30, time.monotonic() - 1)


def test_a_deadline_passes_after_its_budget() -> None:
    fresh = Deadline.after(30)
    assert not fresh.passed()
    fresh.check()
    assert 29 < fresh.remaining_s() <= 30
    assert SPENT.passed()
    with pytest.raises(ReportTimedOut, match="report stopped after 30 s"):
        SPENT.check()


def test_retry_after_is_the_budget_in_whole_seconds() -> None:
    assert Deadline.after(30).retry_after_s() == 30
    assert Deadline.after(0.2).retry_after_s() == 1


def test_an_exact_sum_within_its_budget_is_whole() -> None:
    assert exact_sum(["0.1"] * 1000, Deadline.after(30)) == Decimal("100.0")


def test_an_exact_sum_stops_soon_once_the_deadline_passed() -> None:
    """The sum looks at the deadline every SUM_CHECK_EVERY amounts, not only at its end."""
    summed = 0

    def amounts() -> Iterator[str]:
        nonlocal summed
        for _ in range(100 * SUM_CHECK_EVERY):
            summed += 1
            yield "1.5"

    with pytest.raises(ReportTimedOut):
        exact_sum(amounts(), SPENT)
    assert summed == SUM_CHECK_EVERY


def test_shaping_the_rows_stops_once_the_deadline_passed() -> None:
    """Each row is shaped under the report's deadline, and a conversions row's money totals too."""
    query = EventsQuery(since=_at(0), until=_at(1), partner_id=None)
    prepared = report_sql.events_report(query, dialects.SQLITE)
    assert prepared.rows([(3,)], Deadline.after(30)) == [{"events": 3}]
    with pytest.raises(ReportTimedOut):
        prepared.rows([(3,)], SPENT)
    with pytest.raises(ReportTimedOut):
        dialects.currency_amounts(",".join(["USD:1"] * 2 * SUM_CHECK_EVERY), SPENT)


def _at(day: int) -> datetime:
    return datetime(2026, 2, 18 + day, tzinfo=UTC)
