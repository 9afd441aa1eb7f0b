"""Running one page of an export: the store's blocking reads on a thread of their own, the
encoded chunks handed to the event loop as they are made.

The thread first finds where the page ends (the next page's first row), then reads the page's
rows in order and encodes them a chunk at a time. At most a few chunks wait between the thread
and the client, so an export of any size holds little memory; a client that reads slowly slows
the thread down, and one that goes away stops it (and with it the query) at the next chunk.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import AsyncGenerator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from concurrent.futures import TimeoutError as FutureTimeout
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from thrad_events.errors import Unavailable
from thrad_events.reports.export import csv_chunks, jsonl_chunks
from thrad_events.store.base import Store
from thrad_events.store.errors import StorageError
from thrad_events.store.export_keyset import Keyset

log = logging.getLogger("thrad_events.export")

# Exports a worker process streams at once; more wait for a thread (up to their budget). Each
# holds a thread for as long as its client reads, so the bound keeps exports off the cores and
# connections that ingest needs.
EXPORT_THREADS = 4
# Chunks that may wait between the reading thread and the client.
BUFFERED_CHUNKS = 4
# How often a thread waiting to hand over a chunk looks whether its client is gone.
_POLL_S = 0.5


@dataclass(frozen=True, slots=True)
class ExportPage:
    """At most `limit` rows of `table` from `start` (None: the first), received in
    [since, until), of `partner_id` (None: every partner), as jsonl or csv."""

    table: str
    fmt: str
    partner_id: str | None
    since: datetime | None
    until: datetime
    start: Keyset | None
    limit: int
    include_test: bool = False


@dataclass(frozen=True, slots=True)
class PageStream:
    next_start: Keyset | None
    chunks: AsyncGenerator[bytes, None]


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


_DONE = object()


class ExportRunner:
    def __init__(
        self, store: Store, *, wait_timeout_s: float, threads: int = EXPORT_THREADS
    ) -> None:
        self._store = store
        self._wait_timeout_s = wait_timeout_s
        self._threads = ThreadPoolExecutor(threads, thread_name_prefix="export")
        # Set at shutdown: every page still streaming stops at its next chunk.
        self._closing = threading.Event()

    async def open(self, page: ExportPage) -> PageStream:
        """Start the page; answers once its end is known (so the next cursor can go in the
        answer's headers), or raises Unavailable when storage fails or no thread frees up."""
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue(BUFFERED_CHUNKS)
        gone = threading.Event()
        self._threads.submit(self._produce, page, loop, queue, gone)
        try:
            first = await asyncio.wait_for(queue.get(), self._wait_timeout_s)
        except TimeoutError:
            gone.set()
            raise Unavailable("too many exports at once; retry shortly", retry_after_s=5) from None
        except BaseException:
            gone.set()
            raise
        if isinstance(first, _Failed):
            gone.set()
            raise _unavailable(first.error)
        return PageStream(first, _chunks(queue, gone))

    def _produce(
        self,
        page: ExportPage,
        loop: asyncio.AbstractEventLoop,
        queue: asyncio.Queue[Any],
        gone: threading.Event,
    ) -> None:
        if gone.is_set():  # the request gave up before a thread was free
            return

        def stopped() -> bool:
            return gone.is_set() or self._closing.is_set()

        rows: Iterator[dict[str, Any]] | None = None
        try:
            next_start = self._store.export_next_start(
                page.table,
                page.since,
                page.until,
                page.partner_id,
                page.start,
                page.limit,
                page.include_test,
            )
            if not _hand_over(next_start, loop, queue, stopped):
                return
            rows = self._store.export_rows(
                page.table,
                page.since,
                page.until,
                page.partner_id,
                page.limit,
                start=page.start,
                include_test=page.include_test,
            )
            encoded = jsonl_chunks(rows) if page.fmt == "jsonl" else csv_chunks(page.table, rows)
            for chunk in encoded:
                if not _hand_over(chunk, loop, queue, stopped):
                    return
            _hand_over(_DONE, loop, queue, stopped)
        except Exception as exc:  # storage failing mid-page: the client must see it
            _hand_over(_Failed(exc), loop, queue, stopped)
        finally:
            close = getattr(rows, "close", None)
            if close is not None:
                # Ends the query (and its transaction or cursor) on the thread that opened it.
                close()

    async def close(self) -> None:
        self._closing.set()
        await asyncio.to_thread(self._threads.shutdown, wait=True, cancel_futures=True)


def _hand_over(
    item: Any,
    loop: asyncio.AbstractEventLoop,
    queue: asyncio.Queue[Any],
    stopped: Callable[[], bool],
) -> bool:
    """Put `item` on the queue, waiting for room; False once the client is gone."""
    future = asyncio.run_coroutine_threadsafe(queue.put(item), loop)
    while True:
        try:
            future.result(_POLL_S)
            return True
        except FutureTimeout:
            if stopped():
                future.cancel()
                return False
        except Exception:  # the loop is closing
            return False


async def _chunks(queue: asyncio.Queue[Any], gone: threading.Event) -> AsyncGenerator[bytes, None]:
    try:
        while True:
            item = await queue.get()
            if item is _DONE:
                return
            if isinstance(item, _Failed):
                log.error("export stopped mid-page: %s", item.error)
                raise _unavailable(item.error)
            yield item
    finally:
        # Also when the client went away and the stream was closed unfinished.
        gone.set()


def _unavailable(error: BaseException) -> BaseException:
    if isinstance(error, StorageError):
        return Unavailable(f"storage failed: {error}")
    return error
