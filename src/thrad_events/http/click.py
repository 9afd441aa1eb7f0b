"""GET /v1/click: store the click, then redirect to the signed landing URL with thrad_click_id.

HEAD (Starlette adds it to every GET route) verifies the link the same way and redirects to the
bare landing URL, storing nothing: see Ingestor.click_preview.
"""

from __future__ import annotations

import logging
import time

from starlette.requests import Request
from starlette.responses import RedirectResponse, Response

from thrad_events.errors import IngestError, Outcome
from thrad_events.http.common import Endpoint
from thrad_events.http.errors import error_response, response_for
from thrad_events.http.request import context_of
from thrad_events.ingest.pipeline import Ingestor
from thrad_events.metrics import Metrics

log = logging.getLogger("thrad_events.http")


def click_endpoint(ingestor: Ingestor, metrics: Metrics) -> Endpoint:
    latency = metrics.latency.labels("click")

    async def endpoint(request: Request) -> Response:
        started = time.perf_counter()
        response: Response
        try:
            if request.method == "HEAD":
                location = ingestor.click_preview(request.url.query)
                outcome = Outcome.PREVIEWED
            else:
                location = await ingestor.click(
                    request.url.query,
                    context_of(request.headers, request.client.host if request.client else None),
                )
                outcome = Outcome.STORED
            response = RedirectResponse(
                location, status_code=302, headers={"Cache-Control": "no-store"}
            )
        except IngestError as error:
            outcome, response = error.outcome, response_for(error)
        except Exception:
            log.exception("unexpected error on click")
            outcome = Outcome.INTERNAL
            response = error_response(outcome, "internal error")
        metrics.outcomes.labels("click", outcome).inc()
        metrics.requests.labels("click", str(response.status_code)).inc()
        latency.observe(time.perf_counter() - started)
        return response

    return endpoint
