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
import operator
import sqlite3
from collections.abc import Callable, Iterable
from typing import Any

import msgspec

from thrad_events.store.base import (
    CONVERSION_COLUMNS,
    EVENT_COLUMNS,
    InsertResult,
    StorageError,
)
from thrad_events.store.writer import run_isolated

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
_CONVERSION_CLICK = CONVERSION_COLUMNS.index("click_id")
_event_key: Callable[[Values], Values] = operator.itemgetter(
    *(EVENT_COLUMNS.index(c) for c in ("partner_id", "tag_id", "event_id"))
)
# The keys of the rows one statement inserted: they took the ids from first_id on.
_EVENT_KEYS_SINCE_SQL = (
    "SELECT json_group_array(json_array(partner_id, tag_id, event_id)) FROM events WHERE id >= ?"
)


@functools.lru_cache(maxsize=ROWS_PER_STATEMENT)
def _events_sql(rows: int) -> str:
    marks = "(" + ", ".join("?" for _ in EVENT_COLUMNS) + ")"
    return (
        f"INSERT INTO events ({', '.join(EVENT_COLUMNS)}) VALUES "
        f"{', '.join([marks] * rows)} ON CONFLICT DO NOTHING"
    )


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
    return [run_isolated(connection, insert, values) for values in rows]


class EventRows:
    """The event rows of one request (one, or a batch's), merged by the writer with others'."""

    __slots__ = ("many", "rows")

    def __init__(self, rows: list[Values], *, many: bool) -> None:
        self.rows = rows
        self.many = many

    def __call__(self, connection: sqlite3.Connection) -> Any:
        """Unmerged, row by row."""
        return self._answer(each(connection, insert_event, self.rows))

    def _answer(self, results: list[Result]) -> Any:
        return results if self.many else results[0]

    @classmethod
    def run_merged(cls, connection: sqlite3.Connection, ops: list[EventRows]) -> list[Any]:
        results = _insert_events(connection, [row for op in ops for row in op.rows])
        answers, start = [], 0
        for op in ops:
            answers.append(op._answer(results[start : start + len(op.rows)]))
            start += len(op.rows)
        return answers


def _insert_events(connection: sqlite3.Connection, rows: list[Values]) -> list[Result]:
    # Repeats inside the queue are settled here; repeats of stored rows are the statement's to
    # find (ON CONFLICT DO NOTHING), read back only when there are some.
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
    written: set[int] = set()
    for start in range(0, len(todo), ROWS_PER_STATEMENT):
        chunk = todo[start : start + ROWS_PER_STATEMENT]
        answers = _insert_chunk(connection, [rows[i] for i in chunk])
        if answers is None:
            # SQLite refused a row, so the statement stored nothing. The answers planned for
            # later rows assumed that row stored: decide every row not yet written again, one
            # at a time and in order, against what is really stored.
            rest = [i for i in range(len(rows)) if i not in written]
            again = each(connection, insert_event, [rows[i] for i in rest])
            for index, answer in zip(rest, again, strict=True):
                results[index] = answer
            break
        for index, answer in zip(chunk, answers, strict=True):
            results[index] = answer
            written.add(index)
    return results  # type: ignore[return-value]


def _insert_chunk(connection: sqlite3.Connection, chunk: list[Values]) -> list[Result] | None:
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
