"""GET /v1/api/reports/{events,conversions,funnel}: what a partner or an operator may read back.

A partner's API key reads its own partner's rows and counts against its rate limit like any
request; `Authorization: Bearer <THRAD_ADMIN_TOKEN>` reads every partner's, or one chosen with
partner_id= (its id or name; no admin token configured: no operator access over HTTP). The
queries themselves live in reports/, and all of a report's work, the encoding of its answer
included, runs on a report thread (reports/run.py), never on the event loop that serves ingest.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from urllib.parse import parse_qsl

import msgspec
from starlette.types import Receive, Scope

from thrad_events.auth import admin
from thrad_events.auth.keys import KeyCache, bearer_token, is_admin_token
from thrad_events.errors import Forbidden, IngestError, Outcome, ValidationFailed, field_error
from thrad_events.http.admin_request import blocking
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import JSON_TYPE, Answer
from thrad_events.instants import utcnow
from thrad_events.ratelimits import KeyRateLimiter
from thrad_events.reports.query import Report, parse_report_query
from thrad_events.reports.run import ReportRunner
from thrad_events.store.base import Store

_encoder = msgspec.json.Encoder()
# A report holds a partner's business figures: no shared cache may keep it.
_HEADERS = [(b"cache-control", b"private, no-store"), JSON_TYPE]


@dataclass(frozen=True, slots=True)
class ReportAccess:
    keys: KeyCache
    limiter: KeyRateLimiter
    admin_token: str | None
    store: Store


async def report_scope(
    headers: Mapping[str, str], asked_partner: str | None, access: ReportAccess
) -> str | None:
    """The partner whose rows a request may read; None for an operator reading all of them."""
    token = bearer_token(headers.get("authorization"))
    if is_admin_token(token, access.admin_token):
        if asked_partner is None:
            return None
        # The operator may name any partner, by id or name; no such partner is a 422.
        store = access.store
        return await blocking(lambda: admin.partner_id_of(store, asked_partner, "partner_id"))
    key = await access.keys.authenticate(token)
    try:
        await access.limiter.check(key)
        if asked_partner is not None and asked_partner != key.partner_id:
            raise field_error(Forbidden, "partner_id", "an API key reports on its own partner only")
    except IngestError as error:
        error.sent_with(key)
        raise
    return key.partner_id


async def scoped_query(
    scope: Scope, headers: Mapping[str, str], access: ReportAccess
) -> tuple[list[tuple[str, str]], str | None]:
    """The query's parameters other than partner_id, and the partner the request may read
    (report_scope, given the partner_id asked: once at most)."""
    items = parse_qsl(scope["query_string"].decode("latin-1"), keep_blank_values=True)
    asked = [value for name, value in items if name == "partner_id"]
    partner_id = await report_scope(headers, asked[-1] if asked else None, access)
    if len(asked) > 1:
        raise field_error(ValidationFailed, "partner_id", "given more than once")
    return [(name, value) for name, value in items if name != "partner_id"], partner_id


def report_handle(report: Report, runner: ReportRunner, access: ReportAccess) -> Handle:
    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        items, partner_id = await scoped_query(scope, headers, access)
        query = parse_report_query(report, items, partner_id=partner_id, now=utcnow())
        body = await runner.run(query, _encoder.encode)
        return Outcome.SERVED, Answer(200, body, _HEADERS)

    return handle
