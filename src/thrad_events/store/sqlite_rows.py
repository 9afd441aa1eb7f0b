"""Row writes for the SQLite writer: one row at a time, or event rows merged across requests.

The group-commit writer hands every queued operation of a mergeable kind to `run_merged` at once
(store/writer.py). Event rows then go in as multi-row `INSERT ... ON CONFLICT DO NOTHING`
statements, and every row is still answered exactly as one such INSERT per row, in queue order,
would: the first row with a (partner_id, tag_id, event_id) is inserted, later ones are
duplicates, rows without an event_id never conflict, a row SQLite refuses fails alone. Fewer
statements matter beyond their own cost: every sqlite3 call gives up the GIL and must win it
back from the busy event loop thread. (Collect batches: 17k → 22-28k events/s.)

Conversions stay one row at a time (`insert_conversion`): merging them needs the stored rows of
both unique keys read first, and measured, those reads cost more than the statements they save
(bench/hotpath.py --kind conversion: 44-46 → 52-62 µs of writer CPU per conversion).
"""

from __future__ import annotations

import functools
import logging
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any, ClassVar

import msgspec

from thrad_events.store.base import (
    CONVERSION_COLUMNS,
    EVENT_COLUMNS,
    InsertResult,
    StorageError,
)

log = logging.getLogger(__name__)

Values = tuple[Any, ...]
Result = InsertResult | StorageError
# 41 columns x 256 rows stays well under SQLite's 32,766 bound parameters per statement.
ROWS_PER_STATEMENT = 256
_decode = msgspec.json.Decoder().decode


def insert_sql(table: str, columns: tuple[str, ...]) -> str:
    marks = ", ".join("?" for _ in columns)
    return f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks}) ON CONFLICT DO NOTHING"


_EVENT_SQL = insert_sql("events", EVENT_COLUMNS)
_CONVERSION_SQL = insert_sql("conversions", CONVERSION_COLUMNS)
_CLICK_EXISTS_SQL = "SELECT 1 FROM clicks WHERE click_id = ?"


@functools.lru_cache(maxsize=2 * ROWS_PER_STATEMENT)
def multi_row_sql(table: str, columns: tuple[str, ...], rows: int) -> str:
    marks = "(" + ", ".join("?" for _ in columns) + ")"
    return (
        f"INSERT INTO {table} ({', '.join(columns)}) VALUES "
        f"{', '.join([marks] * rows)} ON CONFLICT DO NOTHING"
    )


def _column(columns: tuple[str, ...], *names: str) -> Callable[[Values], Values]:
    positions = tuple(columns.index(name) for name in names)
    return lambda values: tuple(values[i] for i in positions)


_event_key = _column(EVENT_COLUMNS, "partner_id", "tag_id", "event_id")
_CONVERSION_CLICK = CONVERSION_COLUMNS.index("click_id")


def insert_event(connection: sqlite3.Connection, values: Values) -> InsertResult:
    inserted = connection.execute(_EVENT_SQL, values).rowcount
    return InsertResult.INSERTED if inserted == 1 else InsertResult.DUPLICATE


def insert_conversion(connection: sqlite3.Connection, values: Values) -> InsertResult:
    # Checked inside the writer's transaction, so a click and its conversion are ordered.
    if connection.execute(_CLICK_EXISTS_SQL, (values[_CONVERSION_CLICK],)).fetchone() is None:
        return InsertResult.CLICK_NOT_FOUND
    inserted = connection.execute(_CONVERSION_SQL, values).rowcount
    return InsertResult.INSERTED if inserted == 1 else InsertResult.DUPLICATE


def each(
    connection: sqlite3.Connection,
    insert: Callable[[sqlite3.Connection, Values], InsertResult],
    rows: Iterable[Values],
) -> list[Result]:
    """One row at a time inside the writer's transaction; a row that fails, fails alone."""
    results: list[Result] = []
    for values in rows:
        try:
            results.append(insert(connection, values))
        except sqlite3.OperationalError:
            raise
        except (sqlite3.Error, OverflowError) as exc:
            # OverflowError: an integer wider than SQLite's 64 bits, refused while binding.
            results.append(StorageError(str(exc)))
    return results


class MergedRows:
    """Rows of one request (one, or a batch's) for the writer to merge with other requests'."""

    __slots__ = ("many", "rows")
    table: ClassVar[str]
    columns: ClassVar[tuple[str, ...]]

    def __init__(self, rows: list[Values], *, many: bool) -> None:
        self.rows = rows
        self.many = many

    @staticmethod
    def insert_one(connection: sqlite3.Connection, values: Values) -> InsertResult:
        raise NotImplementedError

    def __call__(self, connection: sqlite3.Connection) -> Any:
        """Unmerged: row by row (the writer's own path for anything not mergeable)."""
        return self._answer(each(connection, type(self).insert_one, self.rows))

    def _answer(self, results: list[Result]) -> Any:
        return results if self.many else results[0]

    @classmethod
    def run_merged(cls, connection: sqlite3.Connection, ops: list[MergedRows]) -> list[Any]:
        results = cls.insert_all(connection, [row for op in ops for row in op.rows])
        answers, start = [], 0
        for op in ops:
            answers.append(op._answer(results[start : start + len(op.rows)]))
            start += len(op.rows)
        return answers

    @classmethod
    def insert_all(cls, connection: sqlite3.Connection, rows: list[Values]) -> list[Result]:
        raise NotImplementedError

    @classmethod
    def _write(
        cls,
        connection: sqlite3.Connection,
        rows: list[Values],
        todo: list[int],
        results: list[Result | None],
        key: Callable[[Values], Values],
    ) -> None:
        """Insert rows[todo] (in order), no two of which conflict with each other; rows that
        meet a stored one are the statement's to find. The other rows have their answers."""
        written: set[int] = set()
        for start in range(0, len(todo), ROWS_PER_STATEMENT):
            chunk = todo[start : start + ROWS_PER_STATEMENT]
            answers = cls._insert_chunk(connection, [rows[i] for i in chunk], key)
            if answers is None:
                # SQLite refused a row, so the statement stored nothing. The answers planned
                # for later rows assumed that row stored: decide every row not yet written
                # again, one at a time and in order, against what is really stored.
                rest = [i for i in range(len(rows)) if i not in written]
                again = each(connection, cls.insert_one, [rows[i] for i in rest])
                for index, answer in zip(rest, again, strict=True):
                    results[index] = answer
                return
            for index, answer in zip(chunk, answers, strict=True):
                results[index] = answer
                written.add(index)

    @classmethod
    def _insert_chunk(
        cls, connection: sqlite3.Connection, chunk: list[Values], key: Callable[[Values], Values]
    ) -> list[Result] | None:
        """One statement; None when SQLite refused a row of it (and so stored none)."""
        try:
            cursor = connection.execute(
                multi_row_sql(cls.table, cls.columns, len(chunk)),
                [value for values in chunk for value in values],
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
        # This statement's rows took the consecutive ids that end at lastrowid (nobody else
        # writes while the writer holds the lock): read their keys back.
        first_id = (cursor.lastrowid or 0) - inserted + 1
        names = ", ".join(_KEY_COLUMNS[cls.table])
        (found,) = connection.execute(
            f"SELECT json_group_array(json_array({names})) FROM {cls.table} WHERE id >= ?",
            (first_id,),
        ).fetchone()
        new = {tuple(stored) for stored in _decode(found)}
        return [
            InsertResult.INSERTED if key(values) in new else InsertResult.DUPLICATE
            for values in chunk
        ]


_KEY_COLUMNS = {"events": ("partner_id", "tag_id", "event_id")}


class EventRows(MergedRows):
    __slots__ = ()
    table = "events"
    columns = EVENT_COLUMNS

    @staticmethod
    def insert_one(connection: sqlite3.Connection, values: Values) -> InsertResult:
        return insert_event(connection, values)

    @classmethod
    def insert_all(cls, connection: sqlite3.Connection, rows: list[Values]) -> list[Result]:
        # Duplicates inside the queue are settled here; duplicates of stored rows are the
        # statement's to find (ON CONFLICT DO NOTHING), read back only when there are some.
        results: list[Result | None] = [None] * len(rows)
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
        cls._write(connection, rows, todo, results, _event_key)
        return results  # type: ignore[return-value]
