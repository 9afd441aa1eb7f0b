"""GET /v1/api/rejections and GET /v1/api/reports/delivery: what became of what a partner sent.

Access is the reports' (http/reports.py): a partner's API key reads its own partner's, the admin
token every partner's or one chosen with partner_id=. The reads run on a worker thread under the
report budget, never on the event loop that serves ingest.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar
from urllib.parse import parse_qsl

import anyio
import msgspec
from starlette.types import Receive, Scope

from thrad_events.errors import Outcome, Unavailable, ValidationFailed, field_error
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import JSON_TYPE, Answer
from thrad_events.http.reports import ReportAccess, report_scope
from thrad_events.reports.delivery_query import parse_delivery_query, parse_rejections_query
from thrad_events.reports.run import _instant
from thrad_events.store.base import StorageError, Store, utcnow

_encoder = msgspec.json.Encoder()
# Reads running at once per worker, as for reports: each thread may hold a connection of its own.
READ_THREADS = 2
# Rejected bodies and delivery figures are a partner's own: no shared cache may keep them.
_HEADERS = [(b"cache-control", b"private, no-store"), JSON_TYPE]
T = TypeVar("T")


async def _scoped(
    scope: Scope, headers: dict[str, str], access: ReportAccess
) -> tuple[list[tuple[str, str]], str | None]:
    items = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    asked = [value for name, value in items if name == "partner_id"]
    partner_id = await report_scope(headers, asked[-1] if asked else None, access)
    if len(asked) > 1:
        raise field_error(ValidationFailed, "partner_id", "given more than once")
    return [(name, value) for name, value in items if name != "partner_id"], partner_id


class _Reads:
    """An endpoint's reads on worker threads: at most READ_THREADS at once, within the budget.

    The limiter is made on first use, on the serving loop.
    """

    def __init__(self, timeout_s: float) -> None:
        self._timeout_s = timeout_s
        self._limiter: anyio.CapacityLimiter | None = None

    async def __call__(self, read: Callable[[], T]) -> T:
        if self._limiter is None:
            self._limiter = anyio.CapacityLimiter(READ_THREADS)
        try:
            with anyio.fail_after(self._timeout_s):
                return await anyio.to_thread.run_sync(
                    read, abandon_on_cancel=True, limiter=self._limiter
                )
        except TimeoutError:
            raise Unavailable(
                f"stopped after {self._timeout_s:g} s; ask for a shorter range", retry_after_s=1
            ) from None
        except StorageError as exc:
            raise Unavailable(str(exc)) from exc


def rejections_handle(store: Store, access: ReportAccess, timeout_s: float) -> Handle:
    reads = _Reads(timeout_s)

    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        items, partner_id = await _scoped(scope, headers, access)
        query = parse_rejections_query(items, partner_id=partner_id, now=utcnow())
        page = await reads(lambda: store.rejections(query))
        body: dict[str, Any] = {
            "since": _instant(query.since),
            "until": _instant(query.until),
            "partner_id": query.partner_id,
            "rejections": page.rejections,
            "truncated": page.truncated,
            "not_kept": page.not_kept,
            "rate_limited": page.rate_limited,
        }
        return Outcome.SERVED, Answer(200, _encoder.encode(body), _HEADERS)

    return handle


def delivery_handle(store: Store, access: ReportAccess, timeout_s: float) -> Handle:
    reads = _Reads(timeout_s)

    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        items, partner_id = await _scoped(scope, headers, access)
        query = parse_delivery_query(items, partner_id=partner_id, now=utcnow())
        rows = await reads(lambda: store.delivery(query))
        body: dict[str, Any] = {
            "report": "delivery",
            "since": _instant(query.since),
            "until": _instant(query.until),
            "partner_id": query.partner_id,
            "group_by": list(query.group_by),
            "rows": rows,
        }
        return Outcome.SERVED, Answer(200, _encoder.encode(body), _HEADERS)

    return handle
