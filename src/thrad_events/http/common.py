"""What every authenticated ingest endpoint does around its own work.

Cheap checks first: the declared body size, then the API key and its rate limit, then reading
and parsing the body.
Every request ends in one Outcome, counted by route.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from thrad_events.auth.keys import KeyCache, bearer_token
from thrad_events.errors import IngestError, Outcome, PayloadTooLarge
from thrad_events.http.errors import error_response, response_for
from thrad_events.http.request import context_of, read_body
from thrad_events.ingest.pipeline import RequestContext
from thrad_events.metrics import Metrics
from thrad_events.ratelimits import KeyRateLimiter
from thrad_events.store.base import ApiKeyRecord

log = logging.getLogger("thrad_events.http")

Handler = Callable[[bytes, ApiKeyRecord, RequestContext], Awaitable[tuple[Outcome, Response]]]
Endpoint = Callable[[Request], Awaitable[Response]]


@dataclass(frozen=True, slots=True)
class EndpointDeps:
    keys: KeyCache
    limiter: KeyRateLimiter
    metrics: Metrics
    max_body_bytes: int
    body_timeout_s: float = 10.0


def ingest_endpoint(
    route: str, deps: EndpointDeps, handle: Handler, *, count_outcome: bool = True
) -> Endpoint:
    """Wrap `handle` with size check, authentication, body reading, error mapping and metrics.

    A batch endpoint counts its items' outcomes itself (count_outcome=False) unless the whole
    request is rejected.
    """
    outcomes = deps.metrics.outcomes
    latency = deps.metrics.latency.labels(route)

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        try:
            declared = request.headers.get("content-length")
            if declared is not None and declared.isdigit() and int(declared) > deps.max_body_bytes:
                raise PayloadTooLarge(f"body is larger than {deps.max_body_bytes} bytes")
            key = await deps.keys.authenticate(bearer_token(request.headers.get("authorization")))
            await deps.limiter.check(key)
            body = await read_body(request, deps.max_body_bytes, deps.body_timeout_s)
            outcome, response = await handle(body, key, context_of(request))
        except IngestError as error:
            outcome, response = error.outcome, response_for(error)
            counted = False
        except Exception:
            log.exception("unexpected error on %s", route)
            outcome = Outcome.INTERNAL
            response = error_response(outcome, "internal error; retry with backoff")
            counted = False
        else:
            counted = not count_outcome
        if not counted:
            outcomes.labels(route, outcome).inc()
        deps.metrics.requests.labels(route, str(response.status_code)).inc()
        latency.observe(time.perf_counter() - started)
        return response

    return endpoint
