"""Running a report: what both the HTTP endpoints and the CLI call, and the threads it runs on.

Every step of a report (its SQL, shaping and summing the rows, encoding the answer) runs on a
report thread, never on the event loop that serves ingest, and under one Deadline: the SQL is
interrupted by it, the Python checks it as it goes, and the waiting request answers 503 when it
passes even if the thread is still busy (whatever the thread then finishes is thrown away).
"""

from __future__ import annotations

import asyncio
import dataclasses
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from thrad_events.deadline import Deadline, ReportTimedOut
from thrad_events.errors import Unavailable
from thrad_events.instants import show_time
from thrad_events.reports.query import (
    AnyReportQuery,
    ConversionsQuery,
    EventsQuery,
    Report,
)
from thrad_events.reports.sql import report_rows
from thrad_events.schemas import ReportFilter, ReportResponse
from thrad_events.store.base import Store
from thrad_events.store.errors import StorageError

# Reports a worker process runs at once; more wait for a thread, within their own budget. The
# bound keeps slow reports from taking every core the ingest path needs.
REPORT_THREADS = 2

T = TypeVar("T")


def report_of(query: AnyReportQuery) -> Report:
    if isinstance(query, EventsQuery):
        return Report.EVENTS
    if isinstance(query, ConversionsQuery):
        return Report.CONVERSIONS
    return Report.FUNNEL


def answer(store: Store, query: AnyReportQuery, deadline: Deadline) -> ReportResponse:
    """The report, computed in the calling thread; raises ReportTimedOut or StorageError.

    The store is asked for one group more than the limit, to tell whether the answer is whole.
    """
    rows = report_rows(store, dataclasses.replace(query, limit=query.limit + 1), deadline)
    return ReportResponse(
        report=report_of(query).value,
        since=show_time(query.since),
        until=show_time(query.until),
        time_basis=query.time_basis.value,
        partner_id=query.partner_id,
        group_by=[field.name for field in query.group_by],
        filters=[ReportFilter(found.field.name, list(found.values)) for found in query.filters],
        rows=rows[: query.limit],
        truncated=len(rows) > query.limit,
        include_test=query.include_test,
    )


class ReportRunner:
    """Runs each report on one of a few threads of its own, under `timeout_s` from the request."""

    def __init__(self, store: Store, *, timeout_s: float, threads: int = REPORT_THREADS) -> None:
        self._store = store
        self._timeout_s = timeout_s
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="report")

    async def run(self, query: AnyReportQuery, render: Callable[[ReportResponse], T]) -> T:
        """`render` (the answer's encoding) runs on the report thread too, within the budget."""
        return await self.call(lambda deadline: render(answer(self._store, query, deadline)))

    async def call(self, read: Callable[[Deadline], T]) -> T:
        """Any read of the store on a report thread, under the report budget (a report, the
        rejections, the delivery report); past the budget, or on storage trouble, a 503."""
        deadline = Deadline.after(self._timeout_s)
        work = self._threads.submit(read, deadline)
        try:
            # On timeout wait_for cancels the work if it still waits for a thread; a running
            # thread stops at its next look at the deadline.
            return await asyncio.wait_for(asyncio.wrap_future(work), deadline.remaining_s())
        except (TimeoutError, ReportTimedOut):
            raise Unavailable(
                str(deadline.timed_out()), retry_after_s=deadline.retry_after_s()
            ) from None
        except StorageError as exc:
            raise Unavailable(str(exc)) from exc

    async def close(self) -> None:
        """Wait for the report threads: a report given up on stops soon after its deadline."""
        await asyncio.to_thread(self._threads.shutdown, wait=True, cancel_futures=True)
