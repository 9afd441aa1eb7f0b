"""POST /v1/api/collect (and /api/collect): one server-side event, answered 204."""

from __future__ import annotations

from starlette.types import ASGIApp

from thrad_events.errors import Outcome
from thrad_events.http.common import EndpointDeps, ingest_endpoint
from thrad_events.http.errors import Answer
from thrad_events.ingest.pipeline import Ingestor, RequestContext
from thrad_events.store.base import ApiKeyRecord


def collect_endpoint(ingestor: Ingestor, deps: EndpointDeps) -> ASGIApp:
    async def handle(body: bytes, key: ApiKeyRecord, ctx: RequestContext) -> tuple[Outcome, Answer]:
        outcome = await ingestor.collect(body, key, ctx)
        # A repeat of an event already stored is also a 204: the client's retry succeeded.
        return outcome, Answer(204)

    return ingest_endpoint("collect", deps, handle)
