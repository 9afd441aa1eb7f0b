"""http/request.py: the body of a request, capped, inflated, and within its time."""

from __future__ import annotations

import asyncio
import gzip
from collections.abc import Awaitable, Callable

import pytest
from starlette.types import Message

from tests.unit.http.asgi import body_of
from thrad_events.errors import InvalidJson, PayloadTooLarge, RequestTimeout, UnsupportedEncoding
from thrad_events.http.request import ClientGone, declared_too_large, header_map, read_body

GZIP = {"content-encoding": "gzip"}


def read(*chunks: bytes, headers: dict[str, str] | None = None, max_bytes: int = 100) -> bytes:
    return asyncio.run(read_body(body_of(*chunks), headers or {}, max_bytes))


def test_a_body_in_several_chunks_is_joined() -> None:
    assert read(b'{"a":', b" 1", b"}") == b'{"a": 1}'


def test_a_body_at_the_cap_is_read_and_one_byte_more_is_a_413() -> None:
    assert read(b"x" * 60, b"x" * 40) == b"x" * 100
    with pytest.raises(PayloadTooLarge):
        read(b"x" * 60, b"x" * 41)


def test_the_declared_length_is_judged_before_anything_is_read() -> None:
    assert declared_too_large({"content-length": "101"}, 100)
    assert not declared_too_large({"content-length": "100"}, 100)
    # Not a number: left to the bytes that arrive (the HTTP parser refuses a malformed one).
    assert not declared_too_large({"content-length": "-1"}, 100)
    assert not declared_too_large({}, 100)


def test_gzip_is_inflated_also_when_split_across_chunks() -> None:
    packed = gzip.compress(b'{"event_name": "page_view"}')
    assert read(packed[:5], packed[5:], headers=GZIP) == b'{"event_name": "page_view"}'


def test_concatenated_gzip_members_are_one_body() -> None:
    packed = gzip.compress(b'{"a": ') + gzip.compress(b"1}")
    assert read(packed, headers={"content-encoding": "x-gzip"}) == b'{"a": 1}'


def test_the_cap_applies_to_the_inflated_size() -> None:
    bomb = gzip.compress(b" " * 10_000)
    assert len(bomb) < 100
    with pytest.raises(PayloadTooLarge):
        read(bomb, headers=GZIP)


@pytest.mark.parametrize(
    "body",
    [
        b"not gzip at all",
        # mtime=0: parameters must be the same in every test process (pytest-xdist).
        gzip.compress(b"{}", mtime=0)[:-4],  # truncated
        gzip.compress(b"{}", mtime=0) + b"junk",  # trailing bytes
    ],
    ids=["not-gzip", "truncated", "trailing-bytes"],
)
def test_broken_gzip_is_invalid_json(body: bytes) -> None:
    with pytest.raises(InvalidJson):
        read(body, headers=GZIP)


def test_an_encoding_other_than_gzip_is_a_415() -> None:
    with pytest.raises(UnsupportedEncoding):
        read(b"{}", headers={"content-encoding": "br"})


def test_a_body_that_does_not_arrive_in_time_is_a_408() -> None:
    async def trickle() -> Message:
        await asyncio.sleep(1)
        return {"type": "http.request", "body": b"x", "more_body": True}

    with pytest.raises(RequestTimeout, match=r"0\.05 s"):
        asyncio.run(read_body(trickle, {}, 100, timeout_s=0.05))


def test_only_the_read_past_its_deadline_is_a_408_and_each_read_gets_its_whole_time() -> None:
    """Reads that began at different times share one timer, each due its own timeout later."""

    def trickling(delay_s: float) -> Callable[[], Awaitable[Message]]:
        async def receive() -> Message:
            await asyncio.sleep(delay_s)
            return {"type": "http.request", "body": b"{}", "more_body": False}

        return receive

    async def reads() -> list[object]:
        async def later(delay_s: float, receive_s: float) -> bytes:
            await asyncio.sleep(delay_s)
            return await read_body(trickling(receive_s), {}, 100, timeout_s=0.2)

        return await asyncio.gather(
            later(0.0, 0.3),  # due at 0.2, its body would come at 0.3: a 408
            later(0.1, 0.15),  # due at 0.3: in time, although past the first read's deadline
            later(0.0, 0.0),
            return_exceptions=True,
        )

    slow, later_in_time, at_once = asyncio.run(reads())
    assert isinstance(slow, RequestTimeout)
    assert later_in_time == b"{}"
    assert at_once == b"{}"


def test_a_cancellation_from_elsewhere_is_not_turned_into_a_408() -> None:
    async def never() -> Message:
        await asyncio.Event().wait()
        raise AssertionError

    async def cancelled() -> None:
        reading = asyncio.ensure_future(read_body(never, {}, 100, timeout_s=0.05))
        await asyncio.sleep(0.01)
        reading.cancel()
        with pytest.raises(asyncio.CancelledError):
            await reading
        # Past what would have been its deadline, nothing is left to cancel another read.
        await asyncio.sleep(0.1)
        assert await read_body(body_of(b"{}"), {}, 100, timeout_s=0.05) == b"{}"

    asyncio.run(cancelled())


def test_reads_that_end_in_time_arm_one_timer_between_them() -> None:
    async def many() -> int:
        loop = asyncio.get_running_loop()
        armed = 0
        call_at = loop.call_at

        def counting_call_at(when: float, callback: Callable[[], object]) -> asyncio.TimerHandle:
            nonlocal armed
            armed += 1
            return call_at(when, callback)

        loop.call_at = counting_call_at  # type: ignore[method-assign,assignment]
        for _ in range(200):
            assert await read_body(body_of(b"{}"), {}, 100, timeout_s=5) == b"{}"
        return armed

    assert asyncio.run(many()) == 1


def test_a_client_gone_before_its_body_leaves_nobody_to_answer() -> None:
    async def gone() -> Message:
        return {"type": "http.disconnect"}

    with pytest.raises(ClientGone):
        asyncio.run(read_body(gone, {}, 100))


def test_header_names_are_lower_case_and_repeats_joined_with_a_comma() -> None:
    scope = {"headers": [(b"X-Forwarded-For", b"192.0.2.1"), (b"x-forwarded-for", b"10.0.0.1")]}
    assert header_map(scope) == {"x-forwarded-for": "192.0.2.1, 10.0.0.1"}
