"""GET /debugger (the event debugger page) and GET /v1/api/debug/stream (its live feed).

The stream is server-sent events over a plain GET with `Authorization: Bearer`: a partner's API
key sees its own partner's requests, THRAD_ADMIN_TOKEN every partner's. One JSON object per
event (`data:`), and a comment line every heartbeat so that proxies keep the connection open.
The page reads it with fetch() and a ReadableStream, as EventSource cannot send a header; the
key stays in the page's memory (or the tab's sessionStorage), never in a URL.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import hashlib
import re
from collections.abc import AsyncGenerator
from importlib import resources

import msgspec
from starlette.types import Receive, Scope

from thrad_events.debugstream.hub import DebugHub, Subscription
from thrad_events.errors import Outcome
from thrad_events.http.endpoint import Handle
from thrad_events.http.errors import Answer
from thrad_events.http.reports import ReportAccess, report_scope
from thrad_events.http.streaming import StreamedAnswer

# The stream waits this long for its own lease to come back over the bus before it says hello
# anyway (a bus that is down still lets this process's requests through).
READY_WAIT_S = 5.0
_STREAM_HEADERS = [
    (b"content-type", b"text/event-stream; charset=utf-8"),
    (b"cache-control", b"no-store"),
    # nginx and friends buffer responses unless told not to.
    (b"x-accel-buffering", b"no"),
]


def _sse(kind: str, payload: bytes) -> bytes:
    return b"event: " + kind.encode() + b"\ndata: " + payload + b"\n\n"


async def _events(
    hub: DebugHub, subscription: Subscription, watches: str | None
) -> AsyncGenerator[bytes, None]:
    """The stream's body, chunk by chunk, until the server lets it go; closed early (the
    client left) it still gives its subscription back."""
    try:
        yield b": thrad-events debug stream\n\n"
        # Our own lease coming back over the bus: the other processes have it too.
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(subscription.ready.wait(), READY_WAIT_S)
        hello = {
            "type": "hello",
            "partner_id": watches,
            "scope": "partner" if watches else "all",
        }
        yield _sse("hello", msgspec.json.encode(hello))
        while True:
            try:
                await asyncio.wait_for(subscription.wake.wait(), hub.heartbeat_s)
            except TimeoutError:
                yield b": heartbeat\n\n"
                continue
            subscription.wake.clear()
            payloads, missed = subscription.take()
            out = bytearray()
            if missed:
                out += _sse("dropped", msgspec.json.encode({"type": "dropped", "missed": missed}))
            for payload in payloads:
                out += _sse("request", payload)
            if subscription.closing:
                bye = {"type": "bye", "reason": "the server is shutting down"}
                out += _sse("bye", msgspec.json.encode(bye))
            if out:
                yield bytes(out)
            if subscription.closing:
                return
    finally:
        _release(hub, subscription)


def _release(hub: DebugHub, subscription: Subscription) -> None:
    subscription.gone = True
    hub.unsubscribe(subscription)


def stream_handle(hub: DebugHub, access: ReportAccess) -> Handle:
    async def handle(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        partner_id = await report_scope(headers, None, access)
        if scope["method"] == "HEAD":
            return Outcome.SERVED, Answer(200, b"", _STREAM_HEADERS)
        subscription = hub.subscribe(partner_id)
        # Released by the answer too: a client gone before the first chunk never starts
        # `_events`, whose own `finally` then never runs.
        return Outcome.SERVED, StreamedAnswer(
            200, b"", _STREAM_HEADERS, _events(hub, subscription, partner_id),
            release=lambda: _release(hub, subscription),
        )  # fmt: skip

    return handle


def _page() -> tuple[Outcome, Answer]:
    html = (resources.files("thrad_events.http") / "debugger.html").read_bytes()
    # The page's one inline script is allowed by its hash: nothing injected could run, not even
    # an event handler attribute, should a partner's data ever reach the markup.
    scripts = re.findall(rb"<script>(.*?)</script>", html, re.S)
    hashes = " ".join(
        "'sha256-" + base64.b64encode(hashlib.sha256(s).digest()).decode() + "'" for s in scripts
    )
    policy = (
        f"default-src 'none'; script-src {hashes}; style-src 'unsafe-inline'; "
        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; form-action 'none'; "
        "frame-ancestors 'none'"
    )
    headers = [
        (b"content-type", b"text/html; charset=utf-8"),
        (b"content-security-policy", policy.encode()),
        (b"x-content-type-options", b"nosniff"),
        (b"referrer-policy", b"no-referrer"),
        (b"cache-control", b"no-cache"),
    ]
    return Outcome.SERVED, Answer(200, html, headers)


def page_handle() -> Handle:
    answer = _page()

    async def page(
        scope: Scope, receive: Receive, headers: dict[str, str]
    ) -> tuple[Outcome, Answer]:
        return answer

    return page
