"""Reading what a request carries: its body under a size cap, its API key, its context."""

from __future__ import annotations

from datetime import UTC, datetime

from starlette.requests import Request

from thrad_events.errors import PayloadTooLarge
from thrad_events.ingest.pipeline import RequestContext


async def read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, refusing with 413 as soon as it is known to be too large."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def context_of(request: Request) -> RequestContext:
    headers = request.headers
    return RequestContext(
        peer_ip=request.client.host if request.client else None,
        forwarded_for=headers.get("x-forwarded-for"),
        origin=headers.get("origin"),
        referer=headers.get("referer"),
        user_agent=headers.get("user-agent"),
        idempotency_key=headers.get("idempotency-key"),
        received_at=datetime.now(UTC),
    )
