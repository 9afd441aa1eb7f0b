"""http/streaming.py: a streamed answer gives back what it holds however the client leaves."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncGenerator, MutableMapping
from typing import Any

import pytest

from thrad_events.http.streaming import StreamedAnswer, send_streamed


def test_a_client_gone_before_the_first_chunk_still_releases_the_answer() -> None:
    started: list[bool] = []
    released: list[bool] = []

    async def chunks() -> AsyncGenerator[bytes, None]:
        started.append(True)
        yield b"never"

    async def receive() -> dict[str, Any]:
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        raise OSError("the client went away")

    answer = StreamedAnswer(200, b"", [], chunks(), release=lambda: released.append(True))
    with pytest.raises(OSError, match="went away"):
        asyncio.run(send_streamed(answer, receive, send, b"rid"))
    # The body never started, so only `release` could give its subscription back.
    assert (started, released) == ([], [True])


def test_a_body_sent_to_its_end_is_released_once() -> None:
    released: list[bool] = []
    sent: list[MutableMapping[str, Any]] = []

    async def chunks() -> AsyncGenerator[bytes, None]:
        yield b"a"
        yield b"b"

    async def receive() -> dict[str, Any]:
        await asyncio.sleep(3600)
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        sent.append(message)

    answer = StreamedAnswer(200, b"", [], chunks(), release=lambda: released.append(True))
    asyncio.run(send_streamed(answer, receive, send, b"rid"))
    assert [m.get("body") for m in sent] == [None, b"a", b"b", b""]
    assert released == [True]
