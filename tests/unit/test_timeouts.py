"""timeouts.py: deadlines of one length, one timer per loop, each key expired on time."""

from __future__ import annotations

import asyncio
from typing import Any

from thrad_events.timeouts import Deadlines


def test_each_key_still_there_expires_its_timeout_after_it_was_added() -> None:
    async def run() -> list[tuple[str, float]]:
        loop = asyncio.get_running_loop()
        began = loop.time()
        expired: list[tuple[str, float]] = []
        deadlines = Deadlines[str](0.2, lambda key: expired.append((key, loop.time() - began)))
        deadlines.add("a", loop)
        await asyncio.sleep(0.1)
        deadlines.add("b", loop)
        deadlines.add("c", loop)
        deadlines.discard("c", loop)  # ended in time
        await asyncio.sleep(0.35)
        return expired

    expired = asyncio.run(run())
    assert [key for key, _ in expired] == ["a", "b"]
    (_, a_at), (_, b_at) = expired
    assert 0.2 <= a_at < 0.28
    assert 0.3 <= b_at < 0.38  # its own 0.2 s, not the first key's deadline


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
