"""Group commit: one writer thread turns many concurrent single-row writes into few commits.

A request enqueues an operation and awaits a future. The thread takes everything queued (up to
`max_batch_rows`), runs it in one transaction, commits, and only then answers each future with
that row's own result, so an acknowledged row is always durable. Batches grow by themselves
under load, because requests keep arriving while the previous commit is on disk, or while
another process holds the write lock: the queue is read once the lock is held.

An operation may also be *mergeable*: it has a `run_merged(connection, ops)` class method, and
the writer hands it every queued operation of its kind at once, to be written in as few
statements as it can. That matters beyond the statement count: every sqlite3 call gives up the
GIL and must win it back from the busy event loop, so the fewer calls per transaction, the
less the writer (and, holding the write lock, every other process) waits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import queue
import sqlite3
import threading
import time
from collections.abc import Callable
from typing import Any

from thrad_events.store.base import StorageError

log = logging.getLogger(__name__)

WriteOp = Callable[[sqlite3.Connection], Any]
# An operation, the future it answers (None: nobody waits) with its loop, and its row count.
_Item = tuple[WriteOp, "asyncio.Future[Any] | None", "asyncio.AbstractEventLoop | None", int]
# A mergeable kind's class method: all of its queued operations in, one answer each out.
_RunMerged = Callable[[sqlite3.Connection, list[Any]], list[Any]]
_STOP = object()


class QueueFull(StorageError):
    """More rows are waiting than the writer may hold: shed load instead of growing memory."""


class WriterStalled(StorageError):
    """The current commit has taken longer than the stall threshold: storage is slow or down."""


class GroupCommitWriter:
    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        *,
        max_batch_rows: int,
        max_queue_rows: int,
        on_batch: Callable[[int, float], None] | None = None,
        exclusive: Callable[[], contextlib.AbstractContextManager[object]] | None = None,
        stall_after_s: float = 1.0,
    ) -> None:
        self._connect = connect
        self._exclusive = exclusive or contextlib.nullcontext
        self._max_batch = max_batch_rows
        self._max_queue = max_queue_rows
        self._on_batch = on_batch
        self._queue: queue.SimpleQueue[_Item | object] = queue.SimpleQueue()
        self._thread: threading.Thread | None = None
        self._failure: str | None = None
        self._stall_after_s = stall_after_s
        # When the batch now being written started (monotonic), or None between batches.
        self._busy_since: float | None = None
        # Rows queued = submitted - taken; each counter has one writing thread (the event loop's,
        # the writer's), so neither needs a lock.
        self._submitted_rows = 0
        self._taken_rows = 0
        # An operation taken from the queue that did not fit the last commit: first of the next.
        self._carry: _Item | None = None

    def start(self) -> None:
        if self._thread is not None:
            return
        connection = self._connect()
        self._thread = threading.Thread(
            target=self._run, args=(connection,), name="group-commit-writer", daemon=True
        )
        self._thread.start()

    def depth(self) -> int:
        """Rows waiting for the writer."""
        return self._submitted_rows - self._taken_rows

    def stalled(self) -> bool:
        busy_since = self._busy_since
        return busy_since is not None and time.monotonic() - busy_since > self._stall_after_s

    def submit(self, op: WriteOp, rows: int = 1) -> asyncio.Future[Any]:
        """Queue one operation writing `rows` rows; the future resolves after its transaction
        has committed. Refused at once when that many more rows would overfill the queue."""
        if self._thread is None:
            raise StorageError("writer is not running")
        if self.depth() + rows > self._max_queue:
            raise QueueFull("write queue is full")
        if self.stalled():
            raise WriterStalled("storage is not keeping up; retry shortly")
        loop = asyncio.get_running_loop()
        future: asyncio.Future[Any] = loop.create_future()
        self._submitted_rows += rows
        self._queue.put((op, future, loop, rows))
        return future

    def submit_nowait(self, op: WriteOp) -> None:
        """Queue an operation whose result nobody waits for (bookkeeping such as last-used)."""
        if self._thread is not None and self.depth() < self._max_queue:
            self._submitted_rows += 1
            self._queue.put((op, None, None, 1))

    def stop(self, timeout_s: float = 30.0) -> None:
        """Commit everything already queued, then end the thread."""
        if self._thread is None:
            return
        self._queue.put(_STOP)
        self._thread.join(timeout_s)
        self._thread = None

    def _run(self, connection: sqlite3.Connection) -> None:
        try:
            while True:
                first = self._carry if self._carry is not None else self._queue.get()
                self._carry = None
                if first is _STOP:
                    return
                self._taken_rows += first[3]  # type: ignore[index]
                if self._commit(connection, first):  # type: ignore[arg-type]
                    return
        finally:
            connection.close()

    def _take(self, batch: list[_Item]) -> bool:
        """Add what is queued to `batch`, up to max_batch_rows in all (an operation is never
        split: one that does not fit waits for the next commit); True when the stop is taken."""
        rows = _rows(batch)
        while rows < self._max_batch:
            try:
                item: Any = self._queue.get_nowait()
            except queue.Empty:
                return False
            if item is _STOP:
                return True
            if rows + item[3] > self._max_batch:
                self._carry = item
                return False
            self._taken_rows += item[3]
            rows += item[3]
            batch.append(item)
        return False

    def _commit(self, connection: sqlite3.Connection, first: _Item) -> bool:
        """Write `first` and whatever is queued once the write lock is ours; True to stop."""
        started = time.perf_counter()
        self._busy_since = time.monotonic()
        batch = [first]
        stop_after = False
        try:
            with self._exclusive():
                # Taken only now: what arrived while another process held the lock joins this
                # commit instead of waiting for the next turn (two workers under the collect
                # benchmark: 16 → 23 rows a commit, writers busy 17 → 10 s of every 20).
                stop_after = self._take(batch)
                results = self._transaction(connection, batch)
        except sqlite3.Error as exc:
            if self._failure != str(exc):
                log.error("batch of %d rows not committed: %s", _rows(batch), exc)
            self._failure = str(exc)
            results = [StorageError(f"storage unavailable: {exc}")] * len(batch)
        except Exception as exc:
            # A bug must not end the thread (every later write would hang): fail this batch.
            log.exception("batch of %d rows not committed", _rows(batch))
            results = [StorageError(f"write failed: {type(exc).__name__}")] * len(batch)
        else:
            self._failure = None
        finally:
            self._busy_since = None
        if self._on_batch is not None:
            self._on_batch(_rows(batch), time.perf_counter() - started)
        self._deliver(batch, results)
        return stop_after

    @staticmethod
    def _transaction(connection: sqlite3.Connection, batch: list[_Item]) -> list[Any]:
        results: list[Any] = [None] * len(batch)
        try:
            connection.execute("BEGIN IMMEDIATE")
            # Mergeable kinds run after the others: they must not depend on their order.
            merged: dict[_RunMerged, list[int]] = {}
            for index, (op, _, _, _) in enumerate(batch):
                run_merged: _RunMerged | None = getattr(op, "run_merged", None)
                if run_merged is not None:
                    merged.setdefault(run_merged, []).append(index)
                else:
                    results[index] = run_isolated(connection, op)
            for run_merged, indexes in merged.items():
                answers = run_merged(connection, [batch[i][0] for i in indexes])
                for index, answer in zip(indexes, answers, strict=True):
                    results[index] = answer
            connection.execute("COMMIT")
        except Exception:
            if connection.in_transaction:
                connection.execute("ROLLBACK")
            raise
        return results

    @staticmethod
    def _deliver(batch: list[_Item], results: list[Any]) -> None:
        by_loop: dict[asyncio.AbstractEventLoop, list[tuple[asyncio.Future[Any], Any]]] = {}
        for (_, future, loop, _), result in zip(batch, results, strict=True):
            if future is not None and loop is not None:
                by_loop.setdefault(loop, []).append((future, result))
        for loop, pairs in by_loop.items():
            # A closed loop means nobody is waiting any more.
            with contextlib.suppress(RuntimeError):
                loop.call_soon_threadsafe(_resolve, pairs)


def _rows(batch: list[_Item]) -> int:
    return sum(item[3] for item in batch)


def run_isolated(connection: sqlite3.Connection, op: Callable[..., Any], *args: Any) -> Any:
    """op(connection, *args), or the StorageError it failed with: one bad row fails alone,
    because SQLite rolls back only that statement. OperationalError (locked, disk full, ...)
    is the whole transaction's and propagates."""
    try:
        return op(connection, *args)
    except sqlite3.OperationalError:
        raise
    except (sqlite3.Error, OverflowError) as exc:
        # OverflowError: an integer wider than SQLite's 64 bits, refused while binding.
        log.error("write failed for one row: %s", exc)
        return StorageError(str(exc))


def _resolve(pairs: list[tuple[asyncio.Future[Any], Any]]) -> None:
    for future, result in pairs:
        if future.done():
            continue
        if isinstance(result, BaseException):
            future.set_exception(result)
        else:
            future.set_result(result)
