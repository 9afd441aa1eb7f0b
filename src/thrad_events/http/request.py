"""Reading what a request carries: its body under a size cap, its API key, its context."""

from __future__ import annotations

import asyncio
import zlib
from datetime import UTC, datetime

from starlette.requests import Request

from thrad_events.errors import InvalidJson, PayloadTooLarge, RequestTimeout, UnsupportedEncoding
from thrad_events.ingest.pipeline import RequestContext


async def read_body(request: Request, max_bytes: int, timeout_s: float = 10.0) -> bytes:
    """The whole body within `timeout_s`, so a client trickling bytes cannot hold a worker."""
    try:
        async with asyncio.timeout(timeout_s):
            return await _read_body(request, max_bytes)
    except TimeoutError:
        raise RequestTimeout(f"body not received within {timeout_s:g} s") from None


async def _read_body(request: Request, max_bytes: int) -> bytes:
    """The whole body, refusing with 413 as soon as it is known to be too large.

    A gzip body (Content-Encoding: gzip) is inflated as it arrives, and the cap applies to the
    inflated size too, so a small bomb cannot expand into memory.
    """
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > max_bytes:
        raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
    encoding = request.headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", ""):
        raise UnsupportedEncoding(f"Content-Encoding {encoding!r} is not supported (use gzip)")
    inflater = zlib.decompressobj(wbits=31) if encoding in ("gzip", "x-gzip") else None
    chunks: list[bytes] = []
    size = 0
    received = 0
    async for chunk in request.stream():
        received += len(chunk)
        if received > max_bytes:
            raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
        if inflater is not None:
            chunk = _inflate(inflater, chunk, max_bytes - size)
        size += len(chunk)
        if size > max_bytes:
            raise PayloadTooLarge(f"body is larger than {max_bytes} bytes once decompressed")
        chunks.append(chunk)
    if inflater is not None and not inflater.eof:
        raise InvalidJson("gzip body is truncated")
    return b"".join(chunks)


def _inflate(inflater: zlib._Decompress, chunk: bytes, room: int) -> bytes:
    try:
        out = inflater.decompress(chunk, room + 1)
    except zlib.error as exc:
        raise InvalidJson(f"body is not valid gzip: {exc}") from None
    if len(out) > room or inflater.unconsumed_tail:
        raise PayloadTooLarge("body is too large once decompressed")
    return out


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
