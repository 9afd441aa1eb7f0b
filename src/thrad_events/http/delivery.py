"""GET /v1/api/rejections and GET /v1/api/reports/delivery: what became of what a partner sent.

Access is the reports' (http/reports.py): a partner's API key reads its own partner's, the admin
token every partner's or one chosen with partner_id=. The reads run on the report threads under
the report budget (reports/run.py), never on the event loop that serves ingest.
"""

from __future__ import annotations

from typing import Any
from urllib.parse import parse_qsl

import msgspec
from starlette.types import Receive, Scope

from thrad_events.errors import Outcome, ValidationFailed, field_error
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import JSON_TYPE, Answer
from thrad_events.http.reports import ReportAccess, report_scope
from thrad_events.ingest.pipeline import format_instant
from thrad_events.reports.delivery_query import parse_delivery_query, parse_rejections_query
from thrad_events.reports.run import ReportRunner
from thrad_events.store.base import Store, utcnow

_encoder = msgspec.json.Encoder()
# Rejected bodies and delivery figures are a partner's own: no shared cache may keep them.
_HEADERS = [(b"cache-control", b"private, no-store"), JSON_TYPE]


async def _scoped(
    scope: Scope, headers: dict[str, str], access: ReportAccess
) -> tuple[list[tuple[str, str]], str | None]:
    items = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    asked = [value for name, value in items if name == "partner_id"]
    partner_id = await report_scope(headers, asked[-1] if asked else None, access)
    if len(asked) > 1:
        raise field_error(ValidationFailed, "partner_id", "given more than once")
    return [(name, value) for name, value in items if name != "partner_id"], partner_id


def rejections_handle(store: Store, runner: ReportRunner, access: ReportAccess) -> Handle:

    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        items, partner_id = await _scoped(scope, headers, access)
        query = parse_rejections_query(items, partner_id=partner_id, now=utcnow())
        page = await runner.call(lambda _: store.rejections(query))
        body: dict[str, Any] = {
            "since": format_instant(query.since),
            "until": format_instant(query.until),
            "partner_id": query.partner_id,
            "rejections": page.rejections,
            "truncated": page.truncated,
            "not_kept": page.not_kept,
            "rate_limited": page.rate_limited,
        }
        return Outcome.SERVED, Answer(200, _encoder.encode(body), _HEADERS)

    return handle


def delivery_handle(store: Store, runner: ReportRunner, access: ReportAccess) -> Handle:

    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        items, partner_id = await _scoped(scope, headers, access)
        query = parse_delivery_query(items, partner_id=partner_id, now=utcnow())
        rows = await runner.call(lambda _: store.delivery(query))
        body: dict[str, Any] = {
            "report": "delivery",
            "since": format_instant(query.since),
            "until": format_instant(query.until),
            "partner_id": query.partner_id,
            "group_by": list(query.group_by),
            "rows": rows,
        }
        return Outcome.SERVED, Answer(200, _encoder.encode(body), _HEADERS)

    return handle
