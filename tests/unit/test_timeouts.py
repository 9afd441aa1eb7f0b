"""timeouts.py: deadlines of one length, one timer per loop, each key expired on time."""

from __future__ import annotations

import asyncio
from typing import Any

from thrad_events.timeouts import Deadlines


def test_each_key_still_there_expires_its_timeout_after_it_was_added() -> None:
    """b, added half a timeout after a, expires a timeout after it was added: not with a, and
    not a whole timeout after a's expiry either. b's time counts from when it was really added;
    the upper bounds leave 0.2 s for a loaded machine's late callbacks; the wrong deadlines are
    0.25 s away from the right ones."""

    async def run() -> tuple[list[tuple[str, float]], float]:
        loop = asyncio.get_running_loop()
        began = loop.time()
        expired: list[tuple[str, float]] = []
        both = asyncio.Event()

        def expire(key: str) -> None:
            expired.append((key, loop.time() - began))
            if len(expired) == 2:
                both.set()

        deadlines = Deadlines[str](0.5, expire)
        deadlines.add("a", loop)
        await asyncio.sleep(0.25)
        # When b was really added: a loaded machine may wake this sleep late.
        b_added = loop.time() - began
        deadlines.add("b", loop)
        deadlines.add("c", loop)
        deadlines.discard("c", loop)  # ended in time
        await asyncio.wait_for(both.wait(), 3)
        await asyncio.sleep(0.05)  # c, discarded, must not follow
        return expired, b_added

    expired, b_added = asyncio.run(run())
    assert [key for key, _ in expired] == ["a", "b"]
    (_, a_at), (_, b_at) = expired
    assert 0.5 <= a_at < 0.7
    # Its own 0.5 s, neither a's deadline nor a's plus 0.5 s.
    assert 0.5 <= b_at - b_added < 0.7


def test_keys_that_end_in_time_share_one_timer_and_none_fires() -> None:
    async def run() -> tuple[int, list[int]]:
        loop = asyncio.get_running_loop()
        armed = 0
        call_at = loop.call_at

        def counting_call_at(when: float, callback: Any, *args: Any, **kw: Any) -> Any:
            nonlocal armed
            armed += getattr(callback, "__qualname__", "") == "_LoopDeadlines.expire"
            return call_at(when, callback, *args, **kw)

        loop.call_at = counting_call_at  # type: ignore[method-assign,assignment]
        expired: list[int] = []
        deadlines = Deadlines[int](0.05, expired.append)
        for key in range(500):
            deadlines.add(key, loop)
            await asyncio.sleep(0)
            deadlines.discard(key, loop)
        await asyncio.sleep(0.1)
        return armed, expired

    armed, expired = asyncio.run(run())
    assert armed == 1
    assert expired == []


def test_a_new_loop_starts_afresh() -> None:
    deadlines = Deadlines[str](0.01, lambda key: None)

    async def add_and_leave() -> None:
        deadlines.add("x", asyncio.get_running_loop())

    asyncio.run(add_and_leave())
    asyncio.run(add_and_leave())
    assert len(deadlines._loops) == 1
