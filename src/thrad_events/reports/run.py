"""Running a report: the one function behind both the HTTP endpoints and the CLI."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from typing import Any

from thrad_events.errors import Unavailable
from thrad_events.reports.query import (
    AnyReportQuery,
    ConversionsQuery,
    EventsQuery,
    Report,
)
from thrad_events.schemas import ReportFilter, ReportResponse
from thrad_events.store.base import StorageError, Store


def report_of(query: AnyReportQuery) -> Report:
    if isinstance(query, EventsQuery):
        return Report.EVENTS
    if isinstance(query, ConversionsQuery):
        return Report.CONVERSIONS
    return Report.FUNNEL


async def run_report(store: Store, query: AnyReportQuery) -> ReportResponse:
    """Ask the store for one group more than the limit, to tell whether the answer is whole."""
    asked = dataclasses.replace(query, limit=query.limit + 1)
    rows: list[dict[str, Any]]
    try:
        if isinstance(asked, EventsQuery):
            rows = await store.report_events(asked)
        elif isinstance(asked, ConversionsQuery):
            rows = await store.report_conversions(asked)
        else:
            rows = await store.report_funnel(asked)
    except StorageError as exc:
        raise Unavailable(str(exc)) from exc
    return ReportResponse(
        report=report_of(query).value,
        since=_instant(query.since),
        until=_instant(query.until),
        partner_id=query.partner_id,
        group_by=[field.name for field in query.group_by],
        filters=[ReportFilter(found.field.name, list(found.values)) for found in query.filters],
        rows=rows[: query.limit],
        truncated=len(rows) > query.limit,
    )


def _instant(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
