"""Reading what a request carries, straight from ASGI: headers, a size-capped body, context."""

from __future__ import annotations

import asyncio
import zlib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from starlette.types import Receive, Scope

from thrad_events.errors import InvalidJson, PayloadTooLarge, RequestTimeout, UnsupportedEncoding
from thrad_events.ingest.pipeline import RequestContext
from thrad_events.timeouts import Deadlines


class ClientGone(Exception):
    """The client disconnected before its body arrived: there is nobody to answer."""


def header_map(scope: Scope) -> dict[str, str]:
    """Lower-case header names to values; repeated headers joined with a comma (RFC 9110)."""
    headers: dict[str, str] = {}
    for raw_name, raw_value in scope["headers"]:
        name = raw_name.decode("latin-1").lower()
        value = raw_value.decode("latin-1")
        headers[name] = f"{headers[name]}, {value}" if name in headers else value
    return headers


def declared_too_large(headers: Mapping[str, str], max_bytes: int) -> bool:
    declared = headers.get("content-length")
    return declared is not None and declared.isdigit() and int(declared) > max_bytes


async def read_body(
    receive: Receive, headers: Mapping[str, str], max_bytes: int, timeout_s: float = 10.0
) -> bytes:
    """The whole body within `timeout_s`, so a client trickling bytes cannot hold a worker.

    Refused with 413 as soon as it is known to be too large: the declared Content-Length is
    checked by the caller before the API key (cheap checks first), the bytes that arrive here.
    A gzip body (Content-Encoding: gzip) is inflated as it arrives, and the cap applies to the
    inflated size too, so a small bomb cannot expand into memory.
    """
    encoding = headers.get("content-encoding", "identity").strip().lower()
    if encoding not in ("identity", "gzip", "x-gzip", ""):
        raise UnsupportedEncoding(f"Content-Encoding {encoding!r} is not supported (use gzip)")
    inflater = GzipInflater() if encoding in ("gzip", "x-gzip") else None
    chunks: list[bytes] = []
    size = 0
    received = 0
    deadlines = _DEADLINES.get(timeout_s) or _DEADLINES.setdefault(
        timeout_s, ReadDeadlines(timeout_s)
    )
    task, cancelling = deadlines.begin()
    try:
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                raise ClientGone
            chunk: bytes = message.get("body", b"")
            received += len(chunk)
            if received > max_bytes:
                raise PayloadTooLarge(f"body is larger than {max_bytes} bytes")
            if inflater is not None and chunk:
                chunk = inflater.inflate(chunk, max_bytes - size)
            size += len(chunk)
            if size > max_bytes:
                raise PayloadTooLarge(f"body is larger than {max_bytes} bytes once decompressed")
            chunks.append(chunk)
            if not message.get("more_body", False):
                break
    except asyncio.CancelledError:
        if deadlines.expired(task, cancelling):
            raise RequestTimeout(f"body not received within {timeout_s:g} s") from None
        raise
    finally:
        deadlines.end(task)
    if inflater is not None:
        inflater.finish()
    return chunks[0] if len(chunks) == 1 else b"".join(chunks)


class ReadDeadlines:
    """The deadline of every body being read with one timeout (timeouts.py keeps them).

    A read past its deadline has its task cancelled, and that cancellation is turned into the
    408 as `asyncio.timeout` turns its own into TimeoutError (a cancellation from elsewhere
    stays one).
    """

    def __init__(self, timeout_s: float) -> None:
        self.timeout_s = timeout_s
        self._deadlines = Deadlines[asyncio.Task[Any]](timeout_s, self._expire)
        self._expired: set[asyncio.Task[Any]] = set()

    def begin(self) -> tuple[asyncio.Task[Any], int]:
        """The current task's read begins: its task and how often it was being cancelled."""
        loop = asyncio.get_running_loop()
        task = asyncio.current_task(loop)
        assert task is not None
        self._deadlines.add(task, loop)
        return task, task.cancelling()

    def end(self, task: asyncio.Task[Any]) -> None:
        self._deadlines.discard(task, task.get_loop())
        if self._expired:
            self._expired.discard(task)

    def expired(self, task: asyncio.Task[Any], cancelling: int) -> bool:
        """Whether the cancellation `task` got is this deadline's own (then it is undone)."""
        if task not in self._expired:
            return False
        self._expired.discard(task)
        return task.uncancel() <= cancelling

    def _expire(self, task: asyncio.Task[Any]) -> None:
        self._expired.add(task)
        task.cancel()


_DEADLINES: dict[float, ReadDeadlines] = {}


GZIP_MAGIC = b"\x1f\x8b"


class GzipInflater:
    """Inflates a gzip body chunk by chunk: one member or several concatenated (RFC 1952 2.2).

    zlib stops at the end of a member and keeps what follows as `unused_data`; that is either
    the next member, inflated into the same body, or trailing bytes that make the body invalid.
    """

    def __init__(self) -> None:
        self.member = zlib.decompressobj(wbits=31)

    def inflate(self, chunk: bytes, room: int) -> bytes:
        """What `chunk` inflates to; over `room` bytes (across members) is a 413."""
        out = self._decompress(chunk, room)
        # After a member's end zlib collects every later byte in unused_data; two of them are
        # enough to tell the next member's magic from trailing junk.
        while self.member.eof and len(self.member.unused_data) >= len(GZIP_MAGIC):
            rest = self.member.unused_data
            if not rest.startswith(GZIP_MAGIC):
                raise InvalidJson("gzip body has trailing bytes after its last member")
            self.member = zlib.decompressobj(wbits=31)
            out += self._decompress(rest, room - len(out))
        return out

    def finish(self) -> None:
        """The body has ended: its last member must be whole and nothing may follow it."""
        if not self.member.eof:
            raise InvalidJson("gzip body is truncated")
        if self.member.unused_data:
            raise InvalidJson("gzip body has trailing bytes after its last member")

    def _decompress(self, data: bytes, room: int) -> bytes:
        try:
            out = self.member.decompress(data, room + 1)
        except zlib.error as exc:
            raise InvalidJson(f"body is not valid gzip: {exc}") from None
        if len(out) > room or self.member.unconsumed_tail:
            raise PayloadTooLarge("body is too large once decompressed")
        return out


def context_of(headers: Mapping[str, str], peer_ip: str | None) -> RequestContext:
    return RequestContext(
        peer_ip=peer_ip,
        forwarded_for=headers.get("x-forwarded-for"),
        origin=headers.get("origin"),
        referer=headers.get("referer"),
        user_agent=headers.get("user-agent"),
        idempotency_key=headers.get("idempotency-key"),
        received_at=datetime.now(UTC),
        forwarded=headers.get("forwarded"),
    )
