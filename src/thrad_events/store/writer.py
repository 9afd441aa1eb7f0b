"""Group commit: one writer per process turns many concurrent writes into few commits.

A request hands the writer an operation and awaits its answer. The writer takes everything
queued, up to `max_batch_rows`, has its sink write it in one transaction, and only after the
commit answers each operation with its own result, so an acknowledged row is always durable.
Batches grow by themselves under load: requests keep arriving while the previous commit is on
disk.

The contract lives here once, for every store: the queue is bounded in rows (a batch request
counts all its rows) and refuses at once what would overfill it (QueueFull); once a commit has
run longer than the stall threshold, new writes are refused at once (WriterStalled) instead of
queueing behind it, and /readyz reports it; a request waits at most `write_timeout_s` for its
commit; an operation is never split between commits; a failed commit answers every operation
in it with StorageError and is logged once while the same failure repeats; `on_batch(rows,
seconds)` feeds the metrics. A request that gave up (timed out) before its operation was taken
is not written.

A sink supplies the rest: what an operation is, and how a batch of them is written in one
transaction with a failing row isolated from the others. Two drivers run sinks, because the two
databases' clients wait differently:

- ThreadedWriter runs a `Sink` on a thread of its own: sqlite3 blocks, and must never block the
  event loop. Its `exclusive()` section (SQLite: a cross-process flock) is entered before the
  queue is read, so what arrives while another process commits joins this commit instead of
  waiting for the next turn.
- TaskWriter runs an `AsyncSink` as a task on the serving loop: psycopg's async connection and
  pool wait without a thread, and a batch is one round trip, so a thread would add only
  hand-offs between threads.

Another sink (a copy of the rows into a columnar store for reports, a durable log in front of
storage) is one new file implementing one of the two protocols.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import threading
import time
from collections.abc import Callable
from typing import Any, Generic, Protocol, TypeVar

from thrad_events.store.errors import StorageError
from thrad_events.timeouts import Deadlines

log = logging.getLogger(__name__)

Op = TypeVar("Op")
# An operation, the future it answers (None: nobody waits) with its loop, and its row count.
_Item = tuple[Any, "asyncio.Future[Any] | None", "asyncio.AbstractEventLoop | None", int]
_STOP = object()


class QueueFull(StorageError):
    """More rows are waiting than the writer may hold: shed load instead of growing memory."""


class WriterStalled(StorageError):
    """The current commit has taken longer than the stall threshold: storage is slow or down."""


class Sink(Protocol[Op]):
    """A store's side of a ThreadedWriter: `open` runs in `start`, so that a database that
    cannot be opened fails start-up; the rest on the writer's thread."""

    # What storage failing raises (unreachable, locked, disk full): logged once while it
    # repeats. Anything else is a bug, logged with its traceback every time.
    failures: tuple[type[Exception], ...]

    def open(self) -> None: ...

    def exclusive(self) -> contextlib.AbstractContextManager[object]:
        """Held while the queue is read and the batch written: the lock writers share."""
        ...

    def write(self, ops: list[Op]) -> list[Any]:
        """One transaction; one answer per operation, in order (an exception instance fails
        that operation alone). Raises when the transaction as a whole failed."""
        ...

    def close(self) -> None: ...


class AsyncSink(Protocol[Op]):
    """A store's side of a TaskWriter; every method runs on the serving loop."""

    failures: tuple[type[Exception], ...]

    async def write(self, ops: list[Op]) -> list[Any]:
        """As Sink.write, awaiting storage instead of blocking."""
        ...

    async def close(self) -> None: ...


SinkT = TypeVar("SinkT", bound="Sink[Any] | AsyncSink[Any]")


class GroupCommitWriter(Generic[Op, SinkT]):
    """What both drivers share: the queue and its bounds, batching, stalls, failures, answers."""

    def __init__(
        self,
        sink: SinkT,
        *,
        max_batch_rows: int,
        max_queue_rows: int,
        write_timeout_s: float,
        on_batch: Callable[[int, float], None] | None = None,
        stall_after_s: float = 1.0,
    ) -> None:
        self._sink: SinkT = sink
        self._max_batch = max_batch_rows
        self._max_queue = max_queue_rows
        self._deadlines = Deadlines[asyncio.Future[Any]](write_timeout_s, _expire)
        self._on_batch = on_batch
        self._stall_after_s = stall_after_s
        self._failures: tuple[type[Exception], ...] = sink.failures
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._running = False
        self._failure: str | None = None
        # When the batch now being written started (monotonic), or None between batches.
        self._busy_since: float | None = None
        # Rows queued = submitted - taken; each counter has one writing thread (the event loop's,
        # the writer's), so neither needs a lock.
        self._submitted_rows = 0
        self._taken_rows = 0
        # An operation taken from the queue that did not fit the last commit: first of the next.
        self._carry: _Item | None = None

    def depth(self) -> int:
        """Rows waiting for the writer."""
        return self._submitted_rows - self._taken_rows

    def stalled(self) -> bool:
        busy_since = self._busy_since
        return busy_since is not None and time.monotonic() - busy_since > self._stall_after_s

    async def write(self, op: Op, rows: int = 1) -> Any:
        """The operation's answer once its transaction has committed; StorageError when it
        cannot be queued or is not committed within the write timeout."""
        future = self.submit(op, rows)
        # Expired by one timer for all writes in flight (timeouts.py), not one each.
        loop = future.get_loop()
        self._deadlines.add(future, loop)
        try:
            return await future
        finally:
            self._deadlines.discard(future, loop)

    def submit(self, op: Op, rows: int = 1) -> asyncio.Future[Any]:
        """Queue one operation writing `rows` rows; the future resolves after its transaction
        has committed. Refused at once when that many more rows would overfill the queue."""
        if not self._running:
            raise StorageError("writer is not running")
        if self._submitted_rows - self._taken_rows + rows > self._max_queue:
            raise QueueFull("write queue is full")
        if self.stalled():
            raise WriterStalled("storage is not keeping up; retry shortly")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._submitted_rows += rows
        self._enqueue((op, future, loop, rows))
        return future

    def submit_nowait(self, op: Op) -> None:
        """Queue an operation whose result nobody waits for (bookkeeping such as last-used);
        dropped when the queue is full."""
        if self._running and self.depth() < self._max_queue:
            self._submitted_rows += 1
            self._queue.put((op, None, None, 1))
            self._queued()

    def _enqueue(self, item: _Item) -> None:
        """Hand one awaited operation to the driver."""
        self._queue.put(item)
        self._queued()

    def _queued(self) -> None:
        """Wake the driver if it waits for work otherwise than on the queue itself."""

    def _next(self, block: bool) -> _Item | object | None:
        """The first operation of the next commit (or _STOP); None when nothing is queued and
        `block` is false. Operations whose requests gave up are skipped."""
        while True:
            if self._carry is not None:
                item: Any = self._carry
                self._carry = None
            else:
                try:
                    item = self._queue.get(block)
                except queue.Empty:
                    return None
            if item is _STOP:
                return item
            self._taken_rows += item[3]
            future = item[1]
            if future is None or not future.done():
                return item  # type: ignore[no-any-return]

    def _take(self, batch: list[_Item]) -> tuple[int, bool]:
        """Add what is queued to `batch`, up to max_batch_rows in all (an operation is never
        split: one that does not fit waits for the next commit); the batch's rows, and True
        when the stop was taken."""
        rows = sum(item[3] for item in batch)
        while rows < self._max_batch:
            try:
                item: Any = self._queue.get_nowait()
            except queue.Empty:
                return rows, False
            if item is _STOP:
                return rows, True
            if rows + item[3] > self._max_batch:
                self._carry = item
                return rows, False
            self._taken_rows += item[3]
            future = item[1]
            if future is not None and future.done():
                continue
            rows += item[3]
            batch.append(item)
        return rows, False

    def _failed(self, rows: int, exc: Exception) -> StorageError:
        """What every operation of a batch that did not commit is answered."""
        if isinstance(exc, self._failures):
            message = str(exc) or type(exc).__name__
            if self._failure != message:
                log.error("batch of %d rows not committed: %s", rows, message)
            self._failure = message
            return StorageError(f"storage unavailable: {message}")
        # A bug must not end the writer (every later write would hang): fail this batch.
        log.error("batch of %d rows not committed", rows, exc_info=exc)
        return StorageError(f"write failed: {type(exc).__name__}")

    def _committed(self) -> None:
        if self._failure is not None:
            log.warning("storage is writable again")
        self._failure = None

    def _report(self, rows: int, started: float) -> None:
        self._busy_since = None
        if self._on_batch is not None:
            self._on_batch(rows, time.perf_counter() - started)

    def _fail_queued(self) -> None:
        """After the writer stopped: whoever still waits is told, instead of timing out."""
        failed = StorageError("server is shutting down")
        while (item := self._next(block=False)) is not None:
            if item is not _STOP:
                _deliver([item], [failed])  # type: ignore[list-item]


class ThreadedWriter(GroupCommitWriter[Op, Sink[Op]]):
    """Group commit on a thread of its own, for a sink whose client blocks.

    The operations a turn of the event loop submits reach the queue together at the turn's
    end: the thread wakes once for them instead of taking the turn's first operations while
    the loop is still making the rest, which would then wait for the next commit.
    """

    _thread: threading.Thread | None = None
    _turn: list[_Item] | None = None  # submitted in this turn of the loop, not yet queued
    # stop() may run on another thread than the loop's end-of-turn hand-over.
    _turn_lock: threading.Lock

    def _enqueue(self, item: _Item) -> None:
        loop = item[2]
        assert loop is not None
        with self._turn_lock:
            turn = self._turn
            if turn is not None and turn[0][2] is loop:
                turn.append(item)
                return
            self._turn = [item]
        self._put(turn)  # another loop's turn, not handed over yet: first, in order
        loop.call_soon(self._hand_over)

    def _hand_over(self) -> None:
        with self._turn_lock:
            turn, self._turn = self._turn, None
        self._put(turn)

    def _put(self, turn: list[_Item] | None) -> None:
        for item in turn or ():
            self._queue.put(item)

    def start(self) -> None:
        if self._thread is not None:
            return
        self._sink.open()
        self._turn_lock = threading.Lock()
        self._running = True
        self._thread = threading.Thread(target=self._run, name="group-commit-writer", daemon=True)
        self._thread.start()

    def stop(self, timeout_s: float = 30.0) -> None:
        """Commit everything already queued, then end the thread."""
        if self._thread is None:
            return
        self._running = False
        self._hand_over()
        self._queue.put(_STOP)
        thread, self._thread = self._thread, None
        thread.join(timeout_s)
        if not thread.is_alive():  # else it may still be reading the queue
            self._fail_queued()

    def _run(self) -> None:
        try:
            while (first := self._next(block=True)) is not _STOP:
                if self._commit(first):  # type: ignore[arg-type]
                    return
        finally:
            self._sink.close()

    def _commit(self, first: _Item) -> bool:
        """Write `first` and whatever is queued once the exclusive section is ours; True to
        stop."""
        started = time.perf_counter()
        self._busy_since = time.monotonic()
        batch = [first]
        rows, stop_after = first[3], False
        try:
            with self._sink.exclusive():
                # Taken only now: what arrived while another process held the lock joins this
                # commit instead of waiting for the next turn.
                rows, stop_after = self._take(batch)
                results = self._sink.write([item[0] for item in batch])
        except Exception as exc:
            results = [self._failed(rows, exc)] * len(batch)
        else:
            self._committed()
        self._report(rows, started)
        _deliver(batch, results)
        return stop_after


class TaskWriter(GroupCommitWriter[Op, AsyncSink[Op]]):
    """Group commit as an asyncio task on the serving loop, for a sink whose client awaits."""

    _task: asyncio.Task[None] | None = None
    _wakeup: asyncio.Event  # made by start(), before anything can be queued

    def start(self) -> None:
        if self._task is None:
            self._wakeup = asyncio.Event()
            self._running = True
            self._task = asyncio.get_running_loop().create_task(self._run(), name="writer")

    def _queued(self) -> None:
        self._wakeup.set()

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Commit everything already queued, then end the task."""
        if self._task is None:
            return
        self._running = False
        self._queue.put(_STOP)
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        self._fail_queued()
        await self._sink.close()

    async def _run(self) -> None:
        while True:
            first = self._next(block=False)
            if first is None:
                # Submissions come from this loop's thread: none can slip in between the
                # empty queue and the wait.
                self._wakeup.clear()
                await self._wakeup.wait()
            elif first is _STOP or await self._commit(first):  # type: ignore[arg-type]
                return

    async def _commit(self, first: _Item) -> bool:
        started = time.perf_counter()
        self._busy_since = time.monotonic()
        batch = [first]
        rows, stop_after = self._take(batch)
        try:
            results = await self._sink.write([item[0] for item in batch])
        except Exception as exc:  # every failure becomes an answer: never a hung request
            results = [self._failed(rows, exc)] * len(batch)
        else:
            self._committed()
        self._report(rows, started)
        # Already on the requests' loop: answered directly, without a hand-off.
        _resolve([(item[1], result) for item, result in zip(batch, results, strict=True)])
        return stop_after


def _deliver(batch: list[_Item], results: list[Any]) -> None:
    """Answer each waiting future on its own loop, one hand-off per loop and batch."""
    by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any] | None, Any]]] = {}
    for (_, future, loop, _), result in zip(batch, results, strict=True):
        if future is not None and loop is not None:
            by_loop.setdefault(loop, []).append((future, result))
    for loop, pairs in by_loop.items():
        # A closed loop means nobody is waiting any more.
        with contextlib.suppress(RuntimeError):
            loop.call_soon_threadsafe(_resolve, pairs)


def _resolve(pairs: list[tuple[asyncio.Future[Any] | None, Any]]) -> None:
    for future, result in pairs:
        if future is None or future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)


def _expire(future: asyncio.Future[Any]) -> None:
    if not future.done():
        # The row may still commit later; a retry with the same event_id or Idempotency-Key is
        # then answered as a duplicate, so nothing is counted twice.
        future.set_exception(StorageError("storage did not commit in time"))
