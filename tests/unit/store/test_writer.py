"""Group commit: many operations, one transaction, one answer per operation after COMMIT.

The writer's contract runs here on a thread over a SQLite sink (ThreadedWriter) and, at the
end, as a task over an in-memory async sink (TaskWriter): the same bounds, batching, stalls
and answers from either driver.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import threading
import time
from pathlib import Path
from typing import Any

import pytest

from thrad_events.store.errors import StorageError
from thrad_events.store.sqlite_writes import Write, transaction
from thrad_events.store.writer import QueueFull, TaskWriter, ThreadedWriter, WriterStalled


def _connector(path: Path) -> sqlite3.Connection:
    connection = sqlite3.connect(path, isolation_level=None, check_same_thread=False)
    connection.execute("PRAGMA journal_mode = WAL")
    connection.execute("CREATE TABLE IF NOT EXISTS t (k TEXT PRIMARY KEY)")
    return connection


def _insert(key: str):  # type: ignore[no-untyped-def]
    def op(connection: sqlite3.Connection) -> bool:
        return (
            connection.execute(
                "INSERT INTO t (k) VALUES (?) ON CONFLICT DO NOTHING", (key,)
            ).rowcount
            == 1
        )

    return op


class _Sink:
    """A SQLite sink whose exclusive section waits for `gate` (as while another process
    holds the write lock) when one is given."""

    failures: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(self, path: Path, gate: threading.Event | None = None) -> None:
        self.path = path
        self.gate = gate
        self.connection: sqlite3.Connection | None = None

    def open(self) -> None:
        self.connection = _connector(self.path)

    def exclusive(self) -> contextlib.AbstractContextManager[object]:
        return contextlib.nullcontext() if self.gate is None else _Gate(self.gate)

    def write(self, ops: list[Write]) -> list[Any]:
        assert self.connection is not None
        return transaction(self.connection, ops)

    def close(self) -> None:
        if self.connection is not None:
            self.connection.close()


def _writer(
    path: Path, gate: threading.Event | None = None, **limits: Any
) -> ThreadedWriter[Write]:
    limits.setdefault("write_timeout_s", 5.0)
    return ThreadedWriter(_Sink(path, gate), **limits)


def _count(path: Path) -> int:
    with sqlite3.connect(path) as connection:
        return int(connection.execute("SELECT count(*) FROM t").fetchone()[0])


def _started_writer(
    path: Path,
    gate: threading.Event | None = None,
    *,
    max_batch_rows: int,
    max_queue_rows: int,
    batches: list[int] | None = None,
    stall_after_s: float = 1.0,
) -> ThreadedWriter[Write]:
    """A started writer whose write lock, with a `gate`, stays taken (as by another process)
    until it is set; `batches` collects the rows of each commit."""
    writer = _writer(
        path,
        gate,
        max_batch_rows=max_batch_rows,
        max_queue_rows=max_queue_rows,
        on_batch=None if batches is None else lambda rows, seconds: batches.append(rows),
        stall_after_s=stall_after_s,
    )
    writer.start()
    return writer


def test_concurrent_writes_share_commits_and_each_gets_its_own_answer(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    batches: list[int] = []
    writer = _writer(
        path,
        max_batch_rows=100,
        max_queue_rows=10_000,
        on_batch=lambda rows, seconds: batches.append(rows),
    )
    writer.start()

    async def main() -> list[bool]:
        return list(
            await asyncio.gather(*(writer.submit(_insert(f"k{i % 150}")) for i in range(300)))
        )

    answers = asyncio.run(main())
    writer.stop()
    # Exactly one insert per distinct key, whatever the batching.
    assert answers.count(True) == 150
    assert _count(path) == 150
    assert sum(batches) == 300
    assert len(batches) < 300, "writes were not grouped into shared commits"
    assert max(batches) <= 100


def test_a_row_that_fails_fails_alone(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = _writer(path, max_batch_rows=10, max_queue_rows=100)
    writer.start()

    def bad(connection: sqlite3.Connection) -> None:
        connection.execute("INSERT INTO t (k) VALUES (NULL), (NULL)")
        connection.execute("INSERT INTO t (k) VALUES ('x'), ('x')")  # IntegrityError

    async def main() -> list[object]:
        return list(
            await asyncio.gather(
                writer.submit(_insert("a")),
                writer.submit(bad),
                writer.submit(_insert("b")),
                return_exceptions=True,
            )
        )

    first, second, third = asyncio.run(main())
    writer.stop()
    assert first is True
    assert isinstance(second, StorageError)
    assert third is True
    assert _count(path) >= 2


def test_stop_commits_everything_already_queued(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = _writer(path, max_batch_rows=5, max_queue_rows=1000)
    writer.start()

    async def main() -> None:
        for i in range(200):
            writer.submit_nowait(_insert(f"n{i}"))

    asyncio.run(main())
    writer.stop()
    assert _count(path) == 200


def test_full_queue_is_refused_at_once(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    gate = threading.Event()
    writer = _started_writer(path, gate, max_batch_rows=1, max_queue_rows=3)

    async def main() -> None:
        first = writer.submit(_insert("a"))  # taken by the writer, which waits at the gate
        await asyncio.sleep(0.05)
        pending = [writer.submit(_insert(f"q{i}")) for i in range(3)]
        with pytest.raises(QueueFull):
            writer.submit(_insert("over"))
        gate.set()
        await asyncio.gather(first, *pending)

    asyncio.run(main())
    writer.stop()
    assert _count(path) == 4


def test_writes_queued_while_the_lock_is_elsewhere_join_the_waiting_commit(
    tmp_path: Path,
) -> None:
    """Another process holds the write lock: what arrives meanwhile goes into the commit that
    is waiting for it, not into a later turn."""
    path = tmp_path / "w.db"
    gate = threading.Event()
    batches: list[int] = []
    writer = _started_writer(path, gate, max_batch_rows=100, max_queue_rows=1_000, batches=batches)

    async def main() -> None:
        first = writer.submit(_insert("a"))  # the writer takes it and waits for the lock
        await asyncio.sleep(0.05)
        later = [writer.submit(_insert(f"q{i}")) for i in range(20)]
        await asyncio.sleep(0)  # the turn ends: its writes reach the writer's queue
        gate.set()
        assert all(await asyncio.gather(first, *later))

    asyncio.run(main())
    writer.stop()
    assert batches == [21]
    assert _count(path) == 21


def test_the_writes_of_one_turn_of_the_loop_reach_the_writer_together(tmp_path: Path) -> None:
    """The thread is idle when the first write of a turn is submitted; the turn goes on
    (here it sleeps, as a busy loop would, without the GIL) and submits more. All of them make
    one commit: the thread was not handed the first alone."""
    path = tmp_path / "w.db"
    batches: list[int] = []
    writer = _started_writer(path, max_batch_rows=100, max_queue_rows=1_000, batches=batches)

    async def main() -> None:
        first = writer.submit(_insert("a"))
        time.sleep(0.05)  # noqa: ASYNC251 (the point: the turn is busy, the loop never yields)
        later = [writer.submit(_insert(f"q{i}")) for i in range(9)]
        assert all(await asyncio.gather(first, *later))

    asyncio.run(main())
    writer.stop()
    assert batches == [10]
    assert _count(path) == 10


def test_stop_hands_over_what_the_current_turn_submitted(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    writer = _started_writer(path, max_batch_rows=100, max_queue_rows=1_000)

    async def main() -> list[asyncio.Future[Any]]:
        pending = [writer.submit(_insert(f"s{i}")) for i in range(5)]
        writer.stop()  # in the same turn: nothing handed to the thread yet
        return pending

    pending = asyncio.run(main())
    assert _count(path) == 5
    assert all(future.done() for future in pending)


def _insert_many(keys: list[str]):  # type: ignore[no-untyped-def]
    def op(connection: sqlite3.Connection) -> int:
        return sum(_insert(key)(connection) for key in keys)

    return op


def test_the_queue_bound_counts_rows_not_requests(tmp_path: Path) -> None:
    """A batch request of many rows takes as much of the queue as that many single rows."""
    path = tmp_path / "w.db"
    gate = threading.Event()
    writer = _started_writer(path, gate, max_batch_rows=100, max_queue_rows=10)

    async def main() -> None:
        first = writer.submit(_insert("a"))  # taken by the writer, which waits at the gate
        await asyncio.sleep(0.05)
        assert writer.depth() == 0
        six = writer.submit(_insert_many([f"s{i}" for i in range(6)]), rows=6)
        assert writer.depth() == 6
        with pytest.raises(QueueFull):
            writer.submit(_insert_many([f"x{i}" for i in range(5)]), rows=5)
        four = writer.submit(_insert_many([f"f{i}" for i in range(4)]), rows=4)
        assert writer.depth() == 10
        with pytest.raises(QueueFull):
            writer.submit(_insert("over"))
        gate.set()
        assert await asyncio.gather(first, six, four) == [True, 6, 4]
        assert writer.depth() == 0

    asyncio.run(main())
    writer.stop()
    assert _count(path) == 11


def test_a_commit_holds_at_most_max_batch_rows_and_never_splits_a_request(
    tmp_path: Path,
) -> None:
    path = tmp_path / "w.db"
    gate = threading.Event()
    batches: list[int] = []
    writer = _started_writer(path, gate, max_batch_rows=10, max_queue_rows=1_000, batches=batches)

    async def main() -> None:
        first = writer.submit(_insert("a"))
        await asyncio.sleep(0.05)
        fours = [
            writer.submit(_insert_many([f"k{n}-{i}" for i in range(4)]), rows=4) for n in range(3)
        ]
        await asyncio.sleep(0)  # the turn ends: its writes reach the writer's queue
        gate.set()
        assert await asyncio.gather(first, *fours) == [True, 4, 4, 4]

    asyncio.run(main())
    writer.stop()
    # 1 + 4 + 4 fit in 10 rows; the third request of 4 waits, whole, for the next commit.
    assert batches == [9, 4]
    assert _count(path) == 13


def test_a_stalled_commit_makes_new_writes_fail_fast(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    gate = threading.Event()
    writer = _started_writer(path, gate, max_batch_rows=10, max_queue_rows=100, stall_after_s=0.1)

    async def main() -> None:
        first = writer.submit(_insert("a"))
        await asyncio.sleep(0.3)
        assert writer.stalled()
        with pytest.raises(WriterStalled):
            writer.submit(_insert("b"))
        gate.set()
        assert await first is True
        assert not writer.stalled()

    asyncio.run(main())
    writer.stop()


class _Gate:
    """Holds the writer inside its exclusive section until the event is set."""

    def __init__(self, event: threading.Event) -> None:
        self.event = event

    def __enter__(self) -> None:
        self.event.wait(10)

    def __exit__(self, *exc: object) -> None:
        return None


def test_a_request_that_gave_up_before_its_commit_is_not_written(tmp_path: Path) -> None:
    path = tmp_path / "w.db"
    gate = threading.Event()
    writer = _started_writer(path, gate, max_batch_rows=10, max_queue_rows=100, stall_after_s=5)
    writer._write_timeout_s = 0.1

    async def main() -> None:
        first = writer.submit(_insert("a"))  # taken by the writer, which waits at the gate
        await asyncio.sleep(0.05)
        with pytest.raises(StorageError, match="did not commit in time"):
            await writer.write(_insert("gave-up"))
        gate.set()
        assert await first is True

    asyncio.run(main())
    writer.stop()
    assert _count(path) == 1


def test_a_failed_commit_fails_each_operation_and_is_logged_once_while_it_repeats(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "w.db"
    writer = _writer(path, max_batch_rows=10, max_queue_rows=100)
    writer.start()

    def locked(connection: sqlite3.Connection) -> None:
        raise sqlite3.OperationalError("database is locked")

    async def main() -> None:
        for _ in range(3):
            with pytest.raises(StorageError, match="storage unavailable: database is locked"):
                await writer.write(locked)
        assert await writer.write(_insert("a")) is True

    asyncio.run(main())
    writer.stop()
    messages = [(r.levelname, r.getMessage()) for r in caplog.records]
    assert messages == [
        ("ERROR", "batch of 1 rows not committed: database is locked"),
        ("WARNING", "storage is writable again"),
    ]


class _MemorySink:
    """An async sink over a dict: an operation is a (key, rows) pair, answered True when the
    key is new; `gate` holds every write until set."""

    failures: tuple[type[Exception], ...] = (OSError,)

    def __init__(self) -> None:
        self.stored: dict[str, int] = {}
        self.gate = asyncio.Event()
        self.gate.set()

    async def write(self, ops: list[tuple[str, int]]) -> list[Any]:
        await self.gate.wait()
        answers = []
        for key, rows in ops:
            answers.append(key not in self.stored)
            self.stored.setdefault(key, rows)
        return answers

    async def close(self) -> None:
        return None


def test_the_task_driver_keeps_the_same_contract() -> None:
    """Bounds in rows, no split operation, stall refusal, one answer per operation."""
    sink = _MemorySink()
    batches: list[int] = []

    async def main() -> None:
        writer = TaskWriter(
            sink,
            max_batch_rows=10,
            max_queue_rows=13,
            write_timeout_s=5.0,
            on_batch=lambda rows, seconds: batches.append(rows),
            stall_after_s=0.1,
        )
        writer.start()
        sink.gate.clear()
        first = writer.submit(("a", 1))
        await asyncio.sleep(0)  # the task takes it and waits at the gate
        fours = [writer.submit((f"k{n}", 4), rows=4) for n in range(3)]
        assert writer.depth() == 12
        with pytest.raises(QueueFull):
            writer.submit(("over", 2), rows=2)
        await asyncio.sleep(0.2)
        assert writer.stalled()
        with pytest.raises(WriterStalled):
            writer.submit(("late", 1))
        sink.gate.set()
        assert await asyncio.gather(first, *fours) == [True, True, True, True]
        assert await writer.write(("a", 1)) is False
        await writer.stop()
        with pytest.raises(StorageError, match="not running"):
            writer.submit(("after", 1))

    asyncio.run(main())
    # The first commit held "a" alone; then 4 + 4 fit in 10 rows and the third 4 waited.
    assert batches == [1, 8, 4, 1]
    assert sink.stored == {"a": 1, "k0": 4, "k1": 4, "k2": 4}
