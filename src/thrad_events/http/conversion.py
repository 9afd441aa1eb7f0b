"""POST /v1/api/conversion (and /api/conversion): a conversion tied to a Thrad click."""

from __future__ import annotations

from starlette.responses import Response

from thrad_events.errors import Outcome
from thrad_events.http.common import Endpoint, EndpointDeps, ingest_endpoint
from thrad_events.ingest.pipeline import Ingestor, RequestContext
from thrad_events.store.base import ApiKeyRecord

_OK = b'{"status":"ok"}'
_DUPLICATE = b'{"status":"duplicate"}'


def conversion_endpoint(ingestor: Ingestor, deps: EndpointDeps) -> Endpoint:
    async def handle(
        body: bytes, key: ApiKeyRecord, ctx: RequestContext
    ) -> tuple[Outcome, Response]:
        outcome = await ingestor.conversion(body, key, ctx)
        content = _OK if outcome is Outcome.STORED else _DUPLICATE
        return outcome, Response(content, media_type="application/json")

    return ingest_endpoint("conversion", deps, handle)
