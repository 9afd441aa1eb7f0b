"""What every authenticated ingest endpoint does around its own work, as a bare ASGI app.

Cheap checks first: the declared body size, then the API key and its rate limit, then reading
and parsing the body. Every request ends in one Outcome, counted by route. The ingest endpoints
are the hot path, so they speak ASGI directly instead of through Starlette's Request/Response
and middleware (BENCHMARKS.md has the measurement); app.py routes POSTs to them first.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import ASGIApp, Receive, Scope, Send

from thrad_events.auth.keys import KeyCache, bearer_token
from thrad_events.errors import IngestError, Outcome, PayloadTooLarge
from thrad_events.http.errors import Answer, error_answer, internal_error_answer
from thrad_events.http.request import (
    ClientGone,
    context_of,
    declared_too_large,
    header_map,
    read_body,
)
from thrad_events.ingest.pipeline import RequestContext
from thrad_events.logs import request_id, request_id_for
from thrad_events.metrics import Metrics
from thrad_events.ratelimits import KeyRateLimiter
from thrad_events.store.base import ApiKeyRecord

log = logging.getLogger("thrad_events.http")


Endpoint = Callable[[Request], Awaitable[Response]]
Handler = Callable[[bytes, ApiKeyRecord, RequestContext], Awaitable[tuple[Outcome, Answer]]]


@dataclass(frozen=True, slots=True)
class EndpointDeps:
    keys: KeyCache
    limiter: KeyRateLimiter
    metrics: Metrics
    max_body_bytes: int
    body_timeout_s: float = 10.0


async def send_answer(send: Send, answer: Answer, rid: str) -> None:
    headers = [
        *answer.headers,
        (b"content-length", str(len(answer.body)).encode()),
        (b"x-request-id", rid.encode()),
    ]
    await send({"type": "http.response.start", "status": answer.status, "headers": headers})
    await send({"type": "http.response.body", "body": answer.body})


def ingest_endpoint(
    route: str, deps: EndpointDeps, handle: Handler, *, count_outcome: bool = True
) -> ASGIApp:
    """Wrap `handle` with size check, authentication, body reading, error mapping and metrics.

    A batch endpoint counts its items' outcomes itself (count_outcome=False) unless the whole
    request is rejected.
    """
    outcomes = {outcome: deps.metrics.outcomes.labels(route, outcome) for outcome in Outcome}
    requests = deps.metrics.requests
    by_status: dict[int, Any] = {}
    latency = deps.metrics.latency.labels(route)

    async def endpoint(scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        headers = header_map(scope)
        rid = request_id_for(headers.get("x-request-id"))
        token = request_id.set(rid)
        counted = False
        try:
            if declared_too_large(headers, deps.max_body_bytes):
                raise PayloadTooLarge(f"body is larger than {deps.max_body_bytes} bytes")
            key = await deps.keys.authenticate(bearer_token(headers.get("authorization")))
            await deps.limiter.check(key)
            body = await read_body(receive, headers, deps.max_body_bytes, deps.body_timeout_s)
            client = scope.get("client")
            outcome, answer = await handle(body, key, context_of(headers, client and client[0]))
            counted = not count_outcome
        except IngestError as error:
            outcome, answer = error.outcome, error_answer(error)
        except ClientGone:
            request_id.reset(token)
            return
        except Exception:
            log.exception("unexpected error on %s", route)
            outcome, answer = Outcome.INTERNAL, internal_error_answer()
        try:
            await send_answer(send, answer, rid)
        finally:
            if not counted:
                outcomes[outcome].inc()
            counter = by_status.get(answer.status)
            if counter is None:
                counter = by_status[answer.status] = requests.labels(route, str(answer.status))
            counter.inc()
            latency.observe(time.perf_counter() - started)
            request_id.reset(token)

    return endpoint
