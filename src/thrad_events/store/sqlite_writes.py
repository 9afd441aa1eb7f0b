"""What the SQLite writer runs: its lock, its transaction, and the row writes it is handed.

Every write to the file, the group-commit writer's batches and the CLI's administrative ones
alike, runs under `WriteLock` and in `transaction`. The lock is a flock, so writers of all
worker processes take turns without meeting in SQLite's busy handler, which sleeps between
retries (that is where p99 latency went).

A write is a callable on the connection, run so that a row SQLite refuses fails alone. Kinds of
write listed in `MERGED` are handed over all of their queued instances at once instead
(`MergedWrite`). Event rows then go in as multi-row `INSERT ... ON CONFLICT DO NOTHING`
statements, and every row is still answered exactly as one such INSERT per row, in queue order,
would: the first row with a (partner_id, tag_id, event_id) is inserted, later ones are
duplicates, rows without an event_id never conflict, a row SQLite refuses fails alone. Fewer
statements matter beyond their own cost: every sqlite3 call gives up the GIL and must win it
back from the busy event loop thread.

Conversions stay one row at a time: merging them needs the stored rows of both unique keys read
first, and those reads cost more than the statements they save (BENCHMARKS.md has both
measurements).
"""

from __future__ import annotations

import contextlib
import fcntl
import functools
import logging
import operator
import os
import sqlite3
import sys
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, Protocol

import msgspec

from thrad_events.fields import CONVERSIONS, EVENTS
from thrad_events.store.errors import StorageError
from thrad_events.store.records import InsertResult, RowResult
from thrad_events.store.test_rows import converts

log = logging.getLogger(__name__)

Values = tuple[Any, ...]
# One queued write: its answer is what the request awaits.
Write = Callable[[sqlite3.Connection], Any]
# The GIL switch interval while this process holds the write lock. Every sqlite3 call gives up
# the GIL, and the writer must then win it back from a busy event loop thread, which CPython
# makes it ask for only after the switch interval (5 ms by default): time the other processes'
# writers spend waiting for the lock. Shortened for the section, the holder gets it back sooner.
LOCK_HOLDER_SWITCH_S = 0.0001
# 41 columns x 256 rows stays well under SQLite's 32,766 bound parameters per statement.
ROWS_PER_STATEMENT = 256
_decode = msgspec.json.Decoder().decode


class WriteLock:
    """The lock every write to one SQLite file takes: a flock on `<file>.write-lock`, which
    hands over between processes at once, and a thread lock, since threads of one process
    share the flock's file description and would pass it through unchecked. While it is held,
    the process's GIL switch interval is LOCK_HOLDER_SWITCH_S."""

    def __init__(self, database: Path) -> None:
        self._path = f"{database}.write-lock"
        self._fd: int | None = None
        self._threads = threading.Lock()

    @contextlib.contextmanager
    def held(self) -> Iterator[None]:
        with self._threads:
            if self._fd is None:
                self._fd = os.open(self._path, os.O_RDWR | os.O_CREAT, 0o600)
            fcntl.flock(self._fd, fcntl.LOCK_EX)
            _SHORT_SWITCH.enter()
            try:
                yield
            finally:
                _SHORT_SWITCH.leave()
                fcntl.flock(self._fd, fcntl.LOCK_UN)

    def close(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


class _ShortSwitch:
    """LOCK_HOLDER_SWITCH_S while any WriteLock of the process is held (locks of two stores may
    be held at once, by two threads): the first holder shortens it, the last one restores it."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._holders = 0
        self._restore = 0.0

    def enter(self) -> None:
        with self._lock:
            if self._holders == 0:
                self._restore = sys.getswitchinterval()
                sys.setswitchinterval(LOCK_HOLDER_SWITCH_S)
            self._holders += 1

    def leave(self) -> None:
        with self._lock:
            self._holders -= 1
            if self._holders == 0:
                sys.setswitchinterval(self._restore)


_SHORT_SWITCH = _ShortSwitch()


class MergedWrite(Protocol):
    """A kind of write whose queued instances are written together, in as few statements as
    it can, one answer per instance in order. They run after the other writes of the batch,
    so they must not depend on their order."""

    def __call__(self, connection: sqlite3.Connection) -> Any:
        """This write alone."""
        ...

    @classmethod
    def run_merged(cls, connection: sqlite3.Connection, writes: list[Any]) -> list[Any]: ...


class SqliteSink:
    """The group-commit writer's side of a SQLite file: its connection, lock and transaction."""

    failures: tuple[type[Exception], ...] = (sqlite3.Error,)

    def __init__(
        self,
        connect: Callable[[], sqlite3.Connection],
        lock: WriteLock,
        settle: Settle | None = None,
    ) -> None:
        self._connect = connect
        self._lock = lock
        self._settle = settle
        self._connection: sqlite3.Connection | None = None

    def open(self) -> None:
        self._connection = self._connect()

    def exclusive(self) -> contextlib.AbstractContextManager[None]:
        return self._lock.held()

    def write(self, ops: list[Write]) -> list[Any]:
        assert self._connection is not None, "open() first"
        return transaction(self._connection, ops, self._settle)

    def close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            connection.close()


# What runs last in a transaction, given its writes and their answers (the delivery counts).
Settle = Callable[[sqlite3.Connection, list[Write], list[Any]], None]


def transaction(
    connection: sqlite3.Connection, writes: list[Write], settle: Settle | None = None
) -> list[Any]:
    """`writes` in one transaction, one answer each (a StorageError for one that failed
    alone), then `settle`; the caller holds the WriteLock. Raises, rolled back, when the
    transaction failed."""
    results: list[Any] = [None] * len(writes)
    with immediate(connection):
        merged: dict[type[MergedWrite], list[int]] = {}
        for index, write in enumerate(writes):
            kind = type(write)
            if kind in MERGED:
                merged.setdefault(kind, []).append(index)
            else:
                results[index] = run_isolated(connection, write)
        for kind, indexes in merged.items():
            answers = kind.run_merged(connection, [writes[i] for i in indexes])
            for index, answer in zip(indexes, answers, strict=True):
                results[index] = answer
        if settle is not None:
            settle(connection, writes, results)
    return results


@contextlib.contextmanager
def immediate(connection: sqlite3.Connection) -> Iterator[None]:
    """BEGIN IMMEDIATE (the write lock of the file, taken up front) ... COMMIT, rolled back
    when the body raises."""
    connection.execute("BEGIN IMMEDIATE")
    try:
        yield
        connection.execute("COMMIT")
    except BaseException:
        if connection.in_transaction:
            connection.execute("ROLLBACK")
        raise


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


def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING"


_EVENT_SQL = insert_sql("events", EVENTS.columns)
_CONVERSION_SQL = insert_sql("conversions", CONVERSIONS.columns)
_CLICK_TEST_SQL = "SELECT test FROM clicks WHERE click_id = ?"
_CONVERSION_CLICK = CONVERSIONS.columns.index("click_id")
_CONVERSION_TEST = CONVERSIONS.columns.index("test")
# An event's unique key; test rows have a dedupe space of their own.
_event_key: Callable[[Values], Values] = operator.itemgetter(
    *(EVENTS.columns.index(c) for c in ("partner_id", "test", "tag_id", "event_id"))
)
# The keys of the rows one statement inserted: they took the ids from first_id on.
_EVENT_KEYS_SINCE_SQL = (
    "SELECT json_group_array(json_array(partner_id, test, tag_id, event_id)) "
    "FROM events WHERE id >= ?"
)


@functools.lru_cache(maxsize=ROWS_PER_STATEMENT)
def _events_sql(rows: int) -> str:
    marks = "(" + ", ".join("?" for _ in EVENTS.columns) + ")"
    return (
        f"INSERT INTO events ({', '.join(EVENTS.columns)}) VALUES "
        f"{', '.join([marks] * rows)} ON CONFLICT DO NOTHING"
    )


def insert_event(connection: sqlite3.Connection, values: Values) -> InsertResult:
    inserted = connection.execute(_EVENT_SQL, values).rowcount
    return InsertResult.INSERTED if inserted == 1 else InsertResult.DUPLICATE


def insert_conversion(connection: sqlite3.Connection, values: Values) -> InsertResult:
    # Checked inside the writer's transaction, so a click and its conversion are ordered.
    click = connection.execute(_CLICK_TEST_SQL, (values[_CONVERSION_CLICK],)).fetchone()
    if click is None or not converts(bool(click[0]), bool(values[_CONVERSION_TEST])):
        return InsertResult.CLICK_NOT_FOUND
    inserted = connection.execute(_CONVERSION_SQL, values).rowcount
    return InsertResult.INSERTED if inserted == 1 else InsertResult.DUPLICATE


def row_by_row(
    connection: sqlite3.Connection,
    insert: Callable[[sqlite3.Connection, Values], InsertResult],
    rows: list[Values],
) -> list[RowResult]:
    """One row at a time inside the writer's transaction; a row that fails, fails alone."""
    return [run_isolated(connection, insert, values) for values in rows]


class EventRows:
    """The event rows of one request (one, or a batch's): a MergedWrite, answered with one
    RowResult per row. `route`: the request's, for the delivery counts (None: not counted)."""

    __slots__ = ("route", "rows")

    def __init__(self, rows: list[Values], route: str | None = None) -> None:
        self.rows = rows
        self.route = route

    def delivered(self, answer: Any) -> Iterator[tuple[Values, Any]]:
        return zip(self.rows, answer, strict=True)

    def __call__(self, connection: sqlite3.Connection) -> list[RowResult]:
        return row_by_row(connection, insert_event, self.rows)

    @classmethod
    def run_merged(
        cls, connection: sqlite3.Connection, writes: list[EventRows]
    ) -> list[list[RowResult]]:
        results = _insert_events(connection, [row for write in writes for row in write.rows])
        answers, start = [], 0
        for write in writes:
            end = start + len(write.rows)
            answers.append(results[start:end])
            start = end
        return answers


class ConversionRow:
    """The conversion of one request."""

    __slots__ = ("route", "values")

    def __init__(self, values: Values, route: str | None = None) -> None:
        self.values = values
        self.route = route

    def delivered(self, answer: Any) -> Iterator[tuple[Values, Any]]:
        yield self.values, answer

    def __call__(self, connection: sqlite3.Connection) -> InsertResult:
        return insert_conversion(connection, self.values)


class ConversionRows:
    """The conversion rows of one batch request, answered with one RowResult per row."""

    __slots__ = ("route", "rows")

    def __init__(self, rows: list[Values], route: str | None = None) -> None:
        self.rows = rows
        self.route = route

    def delivered(self, answer: Any) -> Iterator[tuple[Values, Any]]:
        return zip(self.rows, answer, strict=True)

    def __call__(self, connection: sqlite3.Connection) -> list[RowResult]:
        return row_by_row(connection, insert_conversion, self.rows)


# The kinds of write the writer merges across requests.
MERGED: frozenset[type[MergedWrite]] = frozenset({EventRows})
# The kinds of write that store a request's rows: each has the request's `route` (None: not
# counted) and pairs its rows with their answers in `delivered`, for the delivery counts.
ROW_WRITES = (EventRows, ConversionRow, ConversionRows)


def _insert_events(connection: sqlite3.Connection, rows: list[Values]) -> list[RowResult]:
    # Repeats inside the queue are settled here; repeats of stored rows are the statement's to
    # find (ON CONFLICT DO NOTHING), read back only when there are some.
    results: list[RowResult | None] = [None] * len(rows)
    seen: set[Values] = set()
    todo = []
    for index, values in enumerate(rows):
        key = _event_key(values)
        if None not in key:
            if key in seen:
                results[index] = InsertResult.DUPLICATE
                continue
            seen.add(key)
        todo.append(index)
    written: set[int] = set()
    for start in range(0, len(todo), ROWS_PER_STATEMENT):
        chunk = todo[start : start + ROWS_PER_STATEMENT]
        answers = _insert_chunk(connection, [rows[i] for i in chunk])
        if answers is None:
            # SQLite refused a row, so the statement stored nothing. The answers planned for
            # later rows assumed that row stored: decide every row not yet written again, one
            # at a time and in order, against what is really stored.
            rest = [i for i in range(len(rows)) if i not in written]
            again = row_by_row(connection, insert_event, [rows[i] for i in rest])
            for index, answer in zip(rest, again, strict=True):
                results[index] = answer
            break
        for index, answer in zip(chunk, answers, strict=True):
            results[index] = answer
            written.add(index)
    return results  # type: ignore[return-value]


def _insert_chunk(connection: sqlite3.Connection, chunk: list[Values]) -> list[RowResult] | None:
    """One statement for rows with distinct keys; None when SQLite refused a row of it (and so
    stored none)."""
    try:
        cursor = connection.execute(
            _events_sql(len(chunk)), [value for values in chunk for value in values]
        )
    except sqlite3.OperationalError:
        raise
    except (sqlite3.Error, OverflowError):
        return None
    inserted = cursor.rowcount
    if inserted == len(chunk):
        return [InsertResult.INSERTED] * len(chunk)
    if inserted <= 0:
        return [InsertResult.DUPLICATE] * len(chunk)
    # The writer holds the write lock, so this statement's rows took the consecutive ids that
    # end at lastrowid: read their keys back.
    first_id = (cursor.lastrowid or 0) - inserted + 1
    (found,) = connection.execute(_EVENT_KEYS_SINCE_SQL, (first_id,)).fetchone()
    new = {tuple(stored) for stored in _decode(found)}
    return [
        InsertResult.INSERTED if _event_key(values) in new else InsertResult.DUPLICATE
        for values in chunk
    ]
