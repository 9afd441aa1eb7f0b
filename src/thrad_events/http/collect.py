"""POST /v1/api/collect (and /api/collect): one server-side event, answered 204."""

from __future__ import annotations

from starlette.responses import Response

from thrad_events.errors import Outcome
from thrad_events.http.common import Endpoint, EndpointDeps, ingest_endpoint
from thrad_events.ingest.pipeline import Ingestor, RequestContext
from thrad_events.store.base import ApiKeyRecord


def collect_endpoint(ingestor: Ingestor, deps: EndpointDeps) -> Endpoint:
    async def handle(
        body: bytes, key: ApiKeyRecord, ctx: RequestContext
    ) -> tuple[Outcome, Response]:
        outcome = await ingestor.collect(body, key, ctx)
        # A repeat of an event already stored is also a 204: the client's retry succeeded.
        return outcome, Response(status_code=204)

    return ingest_endpoint("collect", deps, handle)
