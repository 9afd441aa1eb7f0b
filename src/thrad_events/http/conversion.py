"""POST /v1/api/conversion (and /api/conversion): a conversion tied to a Thrad click."""

from __future__ import annotations

from starlette.types import ASGIApp

from thrad_events.errors import Outcome
from thrad_events.http.common import EndpointDeps, ingest_endpoint
from thrad_events.http.errors import JSON_TYPE, Answer
from thrad_events.ingest.pipeline import Ingestor, RequestContext
from thrad_events.store.base import ApiKeyRecord

_OK = b'{"status":"ok"}'
_DUPLICATE = b'{"status":"duplicate"}'


def conversion_endpoint(ingestor: Ingestor, deps: EndpointDeps) -> ASGIApp:
    async def handle(body: bytes, key: ApiKeyRecord, ctx: RequestContext) -> tuple[Outcome, Answer]:
        outcome = await ingestor.conversion(body, key, ctx)
        content = _OK if outcome is Outcome.STORED else _DUPLICATE
        return outcome, Answer(200, content, [JSON_TYPE])

    return ingest_endpoint("conversion", deps, handle)
