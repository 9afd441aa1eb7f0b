"""Driving an ASGI app the way uvicorn does, without a socket: a scope, receive and send."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass
from typing import Any

from starlette.types import ASGIApp, Message, Receive

PEER = "203.0.113.7"


@dataclass
class Reply:
    status: int
    headers: dict[str, str]
    body: bytes
    # Header names as sent, in order, repeats kept.
    names: list[str]

    def json(self) -> Any:
        return json.loads(self.body)


def scope_of(
    method: str, path: str, headers: Sequence[tuple[str, str]] = (), query: bytes = b""
) -> dict[str, Any]:
    return {
        "type": "http",
        "asgi": {"version": "3.0"},
        "http_version": "1.1",
        "scheme": "http",
        "server": ("127.0.0.1", 8080),
        "root_path": "",
        "method": method,
        "path": path,
        "raw_path": path.encode(),
        "query_string": query,
        "client": (PEER, 40000),
        "headers": [(b"host", b"events.example")]
        + [(name.lower().encode("latin-1"), value.encode("latin-1")) for name, value in headers],
    }


def body_of(*chunks: bytes) -> Receive:
    """A receive that hands out `chunks` as one body (more_body on all but the last)."""
    messages = [
        {"type": "http.request", "body": chunk, "more_body": i < len(chunks) - 1}
        for i, chunk in enumerate(chunks or (b"",))
    ]

    async def receive() -> Message:
        if messages:
            return messages.pop(0)
        await asyncio.sleep(3600)  # as uvicorn: nothing more until the client goes away
        raise AssertionError("unreachable")

    return receive


async def call(
    app: ASGIApp | Callable[..., Awaitable[None]],
    method: str,
    path: str,
    *,
    headers: Sequence[tuple[str, str]] = (),
    body: bytes = b"",
    query: bytes = b"",
    receive: Receive | None = None,
) -> Reply | None:
    """One request; its reply, or None when the app sent nothing."""
    sent: list[Message] = []

    async def send(message: Message) -> None:
        sent.append(message)

    await app(scope_of(method, path, headers, query), receive or body_of(body), send)
    if not sent:
        return None
    start, *bodies = sent
    assert start["type"] == "http.response.start"
    raw = [(name.decode("latin-1"), value.decode("latin-1")) for name, value in start["headers"]]
    return Reply(
        start["status"],
        dict(raw),
        b"".join(message.get("body", b"") for message in bodies),
        [name for name, _ in raw],
    )


@contextlib.asynccontextmanager
async def lifespan(app: ASGIApp) -> AsyncIterator[None]:
    """Start-up and shut-down as uvicorn drives them."""
    inbox: asyncio.Queue[Message] = asyncio.Queue()
    outbox: asyncio.Queue[Message] = asyncio.Queue()
    scope = {"type": "lifespan", "asgi": {"version": "3.0"}, "state": {}}
    task = asyncio.create_task(app(scope, inbox.get, outbox.put))
    await inbox.put({"type": "lifespan.startup"})
    assert (await outbox.get())["type"] == "lifespan.startup.complete"
    try:
        yield
    finally:
        await inbox.put({"type": "lifespan.shutdown"})
        assert (await outbox.get())["type"] == "lifespan.shutdown.complete"
        await task
