"""Many deadlines of one length, kept by one timer per event loop instead of one each.

The hot path has two: a request body must arrive within the body timeout (http/request.py),
and a write must commit within the write timeout (store/writer.py). A timer each (`call_later`
or `asyncio.timeout`) is armed and cancelled on every request (BENCHMARKS.md has the cost),
while almost none of them ever fires. Every deadline here is due `timeout_s` after it was
added, so they fall due in the order they were added: an insertion-ordered dict is their queue,
one timer waits for its head, and whatever ends in time leaves the dict before the timer looks.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Hashable
from typing import Generic, TypeVar

Key = TypeVar("Key", bound=Hashable)


class Deadlines(Generic[Key]):
    """`on_expiry(key)` for each key still here `timeout_s` after it was added."""

    def __init__(self, timeout_s: float, on_expiry: Callable[[Key], None]) -> None:
        self.timeout_s = timeout_s
        self._on_expiry = on_expiry
        self._loops: dict[asyncio.AbstractEventLoop, _LoopDeadlines[Key]] = {}

    def add(self, key: Key, loop: asyncio.AbstractEventLoop) -> None:
        """Start `key`'s deadline on `loop` (the loop `on_expiry` is called on)."""
        deadlines = self._loops.get(loop)
        if deadlines is None:
            # A loop that has closed (a test's asyncio.run) takes its deadlines with it.
            for closed in [other for other in self._loops if other.is_closed()]:
                del self._loops[closed]
            deadlines = self._loops[loop] = _LoopDeadlines(loop, self)
        deadlines.add(key)

    def discard(self, key: Key, loop: asyncio.AbstractEventLoop) -> None:
        """`key` ended in time (or has expired already)."""
        deadlines = self._loops.get(loop)
        if deadlines is not None:
            deadlines.due.pop(key, None)


class _LoopDeadlines(Generic[Key]):
    def __init__(self, loop: asyncio.AbstractEventLoop, owner: Deadlines[Key]) -> None:
        self.loop = loop
        self.owner = owner
        self.due: dict[Key, float] = {}
        self.timer: asyncio.TimerHandle | None = None

    def add(self, key: Key) -> None:
        due = self.loop.time() + self.owner.timeout_s
        self.due[key] = due
        if self.timer is None:
            self.timer = self.loop.call_at(due, self.expire)

    def expire(self) -> None:
        self.timer = None
        now = self.loop.time()
        due = self.due
        while due:
            key, when = next(iter(due.items()))
            if when > now:
                self.timer = self.loop.call_at(when, self.expire)
                return
            del due[key]
            self.owner._on_expiry(key)
