"""The one wrapper every endpoint is served through, as a bare ASGI app.

It gives the request its id (the client's X-Request-ID when sane, else a new one: logs.py), runs
the endpoint's handle, turns whatever it raised into an answer (http/errors.py), sends that
answer with the id, and counts the request by route: its outcome, its status and its latency.
Ingest is the hot path, so this is plain ASGI instead of Starlette's Request/Response and
middleware (BENCHMARKS.md has the measurement), and every endpoint shares it so that none
answers or counts differently.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from typing import TYPE_CHECKING

from starlette.types import ASGIApp, Receive, Scope, Send

from thrad_events.debugstream.hub import DebugHub
from thrad_events.errors import IngestError, Outcome, detach
from thrad_events.http.errors import INTERNAL_ERROR, Answer, error_answer
from thrad_events.http.request import ClientGone, header_map
from thrad_events.http.streaming import StreamedAnswer, send_streamed
from thrad_events.logs import RejectionLog, request_id, request_id_for
from thrad_events.metrics import Metrics
from thrad_events.store.delivery import current_route

if TYPE_CHECKING:
    from thrad_events.ingest.delivery import DeliveryRecorder

log = logging.getLogger("thrad_events.http")

# What an endpoint does: the request's scope, its body channel and its headers (lower-case
# names) in, how it ended and the answer out. It raises an IngestError to refuse.
Handle = Callable[[Scope, Receive, dict[str, str]], Awaitable[tuple[Outcome, Answer]]]


def account_refusal(
    route: str,
    status: int,
    error: IngestError,
    rid: str,
    rejections: RejectionLog | None,
    delivery: DeliveryRecorder | None,
) -> None:
    """What a refused request leaves: its rejection log line and, for a known key, its count
    and kept row (ingest/delivery.py). Also for a head the HTTP layer refused
    (http/head_refusals.py)."""
    if rejections is not None:
        rejections.rejected(
            route=route,
            status=status,
            code=error.outcome.value,
            partner_id=error.partner_id,
            key_id=error.key_id,
        )
    if delivery is not None:
        delivery.refused(route, status, error, rid)


def endpoint(
    route: str,
    handle: Handle,
    metrics: Metrics | None,
    *,
    counts_own_outcomes: bool = False,
    rejections: RejectionLog | None = None,
    delivery: DeliveryRecorder | None = None,
    debug: DebugHub | None = None,
) -> ASGIApp:
    """Serve `handle` with a request id, one error renderer and metrics by `route`.

    Without `metrics` the route is not counted (probes and scrapes, see app.py). An endpoint
    that `counts_own_outcomes` (a batch counts each item's) has only a refused request's
    outcome counted here. With `rejections`, each refused request gets its log line. With
    `delivery`, the request's rows are counted under `route` by the writer and a refused
    request of a known key is counted and kept (ingest/delivery.py).
    """
    counts = None
    if metrics is not None:
        counts = metrics.route_counts(route)
        for outcome in Outcome:  # every outcome's series shown from the start, at 0
            metrics.outcomes.labels(route, outcome)

    async def serve(scope: Scope, receive: Receive, send: Send) -> None:
        started = time.perf_counter()
        if counts is not None:
            counts.begin()
        try:
            headers = header_map(scope)
            rid = request_id_for(headers.get("x-request-id"))
            token = request_id.set(rid)
            route_token = current_route.set(route) if delivery is not None else None
            counted = False
            refusal: IngestError | None = None
            watched = debug.begin() if debug is not None and debug.active else None
            try:
                outcome, answer = await handle(scope, receive, headers)
                counted = counts_own_outcomes
            except IngestError as error:
                detach(error)
                refusal = error
                outcome, answer = error.outcome, error_answer(error)
                account_refusal(route, answer.status, error, rid, rejections, delivery)
            except ClientGone:
                request_id.reset(token)
                if route_token is not None:
                    current_route.reset(route_token)
                if watched is not None:
                    debug.forget(watched)  # type: ignore[union-attr]
                return
            except Exception:
                log.exception("unexpected error on %s", route)
                outcome, answer = Outcome.INTERNAL, INTERNAL_ERROR
            if watched is not None:
                debug.finish(watched, scope, route, rid, answer.status, outcome, refusal)  # type: ignore[union-attr]
            try:
                if isinstance(answer, StreamedAnswer):
                    await send_streamed(answer, receive, send, rid.encode())
                    return
                await send(
                    {
                        "type": "http.response.start",
                        "status": answer.status,
                        "headers": [
                            *answer.headers,
                            (b"content-length", str(len(answer.body)).encode()),
                            (b"x-request-id", rid.encode()),
                        ],
                    }
                )
                await send({"type": "http.response.body", "body": answer.body})
            finally:
                if counts is not None:
                    counts.count(
                        None if counted else outcome, answer.status, time.perf_counter() - started
                    )
                request_id.reset(token)
                if route_token is not None:
                    current_route.reset(route_token)
        finally:
            if counts is not None:
                counts.end()

    return serve
