"""GET /v1/api/rejections and GET /v1/api/reports/delivery: what became of what a partner sent.

Access is the reports' (http/reports.py): a partner's API key reads its own partner's, the admin
token every partner's or one chosen with partner_id=. The reads run on the report threads under
the report budget (reports/run.py), never on the event loop that serves ingest.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import datetime
from typing import Any, Protocol, TypeVar

import msgspec
from starlette.types import Receive, Scope

from thrad_events.errors import Outcome
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import JSON_TYPE, Answer
from thrad_events.http.reports import ReportAccess, scoped_query
from thrad_events.instants import show_time, utcnow
from thrad_events.reports.delivery_query import parse_delivery_query, parse_rejections_query
from thrad_events.reports.run import ReportRunner
from thrad_events.store.base import Store
from thrad_events.store.delivery_reads import DeliveryQuery, RejectionsQuery

_encoder = msgspec.json.Encoder()
# Rejected bodies and delivery figures are a partner's own: no shared cache may keep them.
_HEADERS = [(b"cache-control", b"private, no-store"), JSON_TYPE]
Q = TypeVar("Q", covariant=True)


class Parse(Protocol[Q]):
    """What reports/delivery_query.py's parsers are: the query from the request's parameters."""

    def __call__(
        self, items: Iterable[tuple[str, str]], *, partner_id: str | None, now: datetime
    ) -> Q: ...


def rejections_handle(store: Store, runner: ReportRunner, access: ReportAccess) -> Handle:
    def answer(query: RejectionsQuery) -> dict[str, Any]:
        page = store.rejections(query)
        return {
            "since": show_time(query.since),
            "until": show_time(query.until),
            "partner_id": query.partner_id,
            "rejections": page.rejections,
            "truncated": page.truncated,
            "not_kept": page.not_kept,
            "rate_limited": page.rate_limited,
        }

    return _read_handle(parse_rejections_query, answer, runner, access)


def delivery_handle(store: Store, runner: ReportRunner, access: ReportAccess) -> Handle:
    def answer(query: DeliveryQuery) -> dict[str, Any]:
        return {
            "report": "delivery",
            "since": show_time(query.since),
            "until": show_time(query.until),
            "partner_id": query.partner_id,
            "group_by": list(query.group_by),
            "rows": store.delivery(query),
        }

    return _read_handle(parse_delivery_query, answer, runner, access)


def _read_handle(
    parse: Parse[Q],
    answer: Callable[[Q], dict[str, Any]],
    runner: ReportRunner,
    access: ReportAccess,
) -> Handle:
    """Scope the request, `parse` its query, then `answer` it and encode the answer on a report
    thread."""

    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        items, partner_id = await scoped_query(scope, headers, access)
        query = parse(items, partner_id=partner_id, now=utcnow())
        body = await runner.call(lambda _: _encoder.encode(answer(query)))
        return Outcome.SERVED, Answer(200, body, _HEADERS)

    return handle
