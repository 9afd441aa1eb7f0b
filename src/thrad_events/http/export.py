"""GET /v1/api/export/{events,conversions}: a partner's stored rows, a page at a time, streamed.

Access is the reports' (http/reports.py): an API key reads its own partner's rows and counts
against its rate limit; the admin token reads every partner's, or one with partner_id=. A page
holds at most `limit` rows in the order received; when more follow, the answer's
`X-Next-Cursor` header (and `Link: <...>; rel="next"`) carries the signed cursor that asks for
the next page. The export's window is fixed by its first page, and ends a few seconds in the
past so that no row still being committed with an earlier receive time is skipped.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from urllib.parse import parse_qsl, urlencode

from starlette.types import Receive, Scope

from thrad_events.errors import Forbidden, Outcome, ValidationFailed, field_error
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import Answer
from thrad_events.http.reports import ReportAccess, report_scope
from thrad_events.http.streaming import StreamedAnswer
from thrad_events.instants import format_time, utcnow
from thrad_events.reports.export_cursor import CursorSigner, ExportCursor
from thrad_events.reports.export_run import ExportPage, ExportRunner
from thrad_events.reports.query import include_test, limit_value, single_value, time_value
from thrad_events.store.export_keyset import KEYSET_TABLES

EXPORT_TABLES = KEYSET_TABLES
FORMATS = {"jsonl": b"application/x-ndjson", "csv": b"text/csv; charset=utf-8"}
DEFAULT_EXPORT_LIMIT = 10_000
MAX_EXPORT_LIMIT = 100_000
PARAMETERS = (
    "since", "until", "format", "limit", "cursor", "partner_id", "partner", "include_test"
)  # fmt: skip
# What a cursor fixes, and so cannot be given with one.
_FIXED_BY_CURSOR = ("since", "until", "partner_id", "partner", "include_test")
_CACHE = (b"cache-control", b"private, no-store")


def export_handle(
    table: str,
    runner: ExportRunner,
    access: ReportAccess,
    cursors: CursorSigner,
    *,
    settle_s: int,
) -> Handle:
    """`settle_s`: how far before now an export's window ends (THRAD_EXPORT_SETTLE_S). Rows
    are stamped received_at before their commit, which may wait behind a busy writer; a page
    that passed a time whose rows are still arriving would skip them for good."""
    settle = timedelta(seconds=settle_s)

    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        given: dict[str, list[str]] = {}
        for name, value in parse_qsl(scope["query_string"].decode("latin-1"), True):
            given.setdefault(name, []).append(value)
        asked = [v for name in ("partner_id", "partner") for v in given.get(name, [])]
        partner_id = await report_scope(headers, asked[-1] if asked else None, access)
        for name in given:
            if name not in PARAMETERS:
                raise field_error(ValidationFailed, name, "unknown query parameter")
        if len(asked) > 1:
            raise field_error(ValidationFailed, "partner_id", "given more than once")
        fmt = single_value(given, "format") or "jsonl"
        if fmt not in FORMATS:
            raise field_error(ValidationFailed, "format", "must be jsonl or csv")
        limit = limit_value(
            single_value(given, "limit"), default=DEFAULT_EXPORT_LIMIT, maximum=MAX_EXPORT_LIMIT
        )
        raw_cursor = single_value(given, "cursor")
        if raw_cursor is not None:
            cursor = _own_cursor(cursors.decode(raw_cursor), table, partner_id, given)
            page = ExportPage(
                table,
                fmt,
                cursor.partner_id,
                cursor.since,
                cursor.until,
                cursor.start,
                limit,
                cursor.include_test,
            )
        else:
            since, until = _window(given, utcnow() - settle)
            page = ExportPage(
                table, fmt, partner_id, since, until, None, limit, include_test(given)
            )
        stream = await runner.open(page)
        answer_headers = [
            (b"content-type", FORMATS[fmt]),
            _CACHE,
            (b"x-export-until", format_time(page.until).encode()),
        ]
        if stream.next_start is not None:
            token = cursors.encode(
                ExportCursor(
                    table,
                    page.partner_id,
                    page.since,
                    page.until,
                    stream.next_start,
                    page.include_test,
                )
            )
            query = urlencode({"cursor": token, "format": fmt, "limit": limit})
            answer_headers.append((b"x-next-cursor", token.encode()))
            answer_headers.append((b"link", f'<{scope["path"]}?{query}>; rel="next"'.encode()))
        return Outcome.SERVED, StreamedAnswer(200, b"", answer_headers, stream.chunks)

    return handle


def _own_cursor(
    cursor: ExportCursor, table: str, scope: str | None, given: dict[str, list[str]]
) -> ExportCursor:
    for name in _FIXED_BY_CURSOR:
        if name in given:
            raise field_error(
                ValidationFailed, name, "not allowed with cursor, which keeps the first page's"
            )
    if cursor.table != table:
        raise field_error(
            ValidationFailed, "cursor", f"belongs to the {cursor.table} export, not {table}"
        )
    # An API key always has a scope; the admin token (scope None) may follow any cursor.
    if scope is not None and cursor.partner_id != scope:
        raise field_error(Forbidden, "cursor", "belongs to another partner's export")
    return cursor


def _window(given: dict[str, list[str]], horizon: datetime) -> tuple[datetime | None, datetime]:
    """since and until as asked, until no later than `horizon`."""
    since, until = time_value(given, "since"), time_value(given, "until")
    if since is not None and until is not None and since >= until:
        raise field_error(ValidationFailed, "since", "must be before until")
    return since, min(until, horizon) if until is not None else horizon
