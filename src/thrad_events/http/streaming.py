"""Answers whose body is sent while it is made (an export), through the one endpoint wrapper.

The status and headers go first; then each chunk as it comes. The request's receive channel is
watched meanwhile: when the client disconnects, the body's iterator is closed, which stops the
work behind it. Its `release`, if any, runs once the answer is over however it ended: before
the first chunk an async generator has not started, so closing it runs none of its code.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncGenerator, Callable
from dataclasses import dataclass

import anyio
from starlette.types import Receive, Send

from thrad_events.http.errors import Answer


@dataclass(slots=True)
class StreamedAnswer(Answer):
    """An answer with a body of unknown length: `chunks`, sent as they come (chunked)."""

    chunks: AsyncGenerator[bytes, None] | None = None
    release: Callable[[], None] | None = None


async def send_streamed(
    answer: StreamedAnswer, receive: Receive, send: Send, request_id: bytes
) -> None:
    assert answer.chunks is not None
    try:
        await send(
            {
                "type": "http.response.start",
                "status": answer.status,
                "headers": [*answer.headers, (b"x-request-id", request_id)],
            }
        )
        async with (
            contextlib.aclosing(answer.chunks) as chunks,
            anyio.create_task_group() as group,
        ):

            async def until_disconnect() -> None:
                while (await receive())["type"] != "http.disconnect":
                    pass
                group.cancel_scope.cancel()

            group.start_soon(until_disconnect)
            async for chunk in chunks:
                await send({"type": "http.response.body", "body": chunk, "more_body": True})
            await send({"type": "http.response.body", "body": b""})
            group.cancel_scope.cancel()
    finally:
        if answer.release is not None:
            answer.release()
