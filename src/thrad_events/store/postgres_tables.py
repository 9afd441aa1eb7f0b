"""How PostgreSQL stores each table's rows: every value converted to its column's type, and the
one statement per table (INSERT ... SELECT FROM unnest(arrays) ... ON CONFLICT DO NOTHING
RETURNING, a conversion's click looked up in the same statement) whose RETURNING answers each
row, matched back here. PostgresSink (postgres_sink.py) runs these statements in its batches.
"""

from __future__ import annotations

import collections
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec
import psycopg
from psycopg import sql

from thrad_events.fields import TABLES
from thrad_events.store.errors import StorageError
from thrad_events.store.records import InsertResult, Row, RowResult
from thrad_events.store.test_rows import converts

AsyncConn = psycopg.AsyncConnection[Any]

# Per table: the columns whose values identify a stored row in RETURNING (its unique keys), and
# the order rows are inserted in (a shared order keeps two processes' batches from deadlocking).
RETURNED_KEYS: dict[str, tuple[str, ...]] = {
    "events": ("partner_id", "test", "tag_id", "event_id"),
    "conversions": ("partner_id", "test", "dedupe_key", "click_id", "event_type", "order_id"),
    "clicks": ("click_id",),
}
INSERT_ORDER: dict[str, tuple[str, ...]] = {
    "events": ("partner_id", "tag_id", "event_id"),
    "conversions": ("partner_id", "dedupe_key"),
    "clicks": ("click_id",),
}

_json = msgspec.json.Encoder(decimal_format="number")


# -- values ----------------------------------------------------------------------------------


def _text(value: Any) -> Any:
    # PostgreSQL text cannot hold NUL; SQLite can. Keep the row, mark where the NUL was.
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    return value if value is None else str(value)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(str(k)): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    encoded = _json.encode(value)
    if b"\\u0000" in encoded:  # jsonb refuses NUL inside strings
        encoded = _json.encode(_scrub(value))
    return encoded.decode()


def _timestamp(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _numeric(value: Any) -> Decimal | None:
    return value if value is None or isinstance(value, Decimal) else Decimal(str(value))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


def _bool(value: Any) -> bool:
    return bool(value)  # the test flag: a row without it is live


_TO_DB: dict[str, Callable[[Any], Any]] = {
    "jsonb": _json_text,
    "json": _json_text,
    "timestamptz": _timestamp,
    "numeric": _numeric,
    "float8": _float,
    "float4": _float,
    "int8": _int,
    "int4": _int,
    "int2": _int,
    "bool": _bool,
    "text": _text,
}


# -- statements ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableWrite:
    """How one table's rows are converted, inserted, and matched back to their answers."""

    name: str
    columns: tuple[str, ...]
    converters: tuple[Callable[[Any], Any], ...]
    statement: bytes  # rendered once: psycopg would render a Composed again on every execute
    key_positions: tuple[int, ...]
    click_position: int | None  # conversions: where click_id is

    def values(self, row: Row) -> tuple[Any, ...]:
        return tuple(
            convert(row.get(column))
            for column, convert in zip(self.columns, self.converters, strict=True)
        )

    def arrays(self, rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
        return [list(column) for column in zip(*rows, strict=True)]

    def key(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(values[i] for i in self.key_positions)


def table_write(name: str, columns: tuple[str, ...], types: dict[str, str]) -> TableWrite:
    missing = [column for column in columns if column not in types]
    if missing:
        raise StorageError(
            f"table {name} lacks columns {', '.join(missing)}: run `thrad-events migrate`"
        )
    ident = sql.Identifier
    names = sql.SQL(", ").join(ident(column) for column in columns)
    # JSON travels as text and is parsed by PostgreSQL; everything else in its own type.
    arrays = sql.SQL(", ").join(
        sql.SQL("%b::{}[]").format(sql.SQL("text" if types[c] in ("jsonb", "json") else types[c]))
        for c in columns
    )
    picks = sql.SQL(", ").join(
        sql.SQL("u.{}::{}").format(ident(c), sql.SQL(types[c]))
        if types[c] in ("jsonb", "json")
        else sql.SQL("u.{}").format(ident(c))
        for c in columns
    )
    order = sql.SQL(", ").join(
        [*(sql.SQL("u.{}").format(ident(c)) for c in INSERT_ORDER[name]), sql.SQL("u._ord")]
    )
    returned = sql.SQL(", ").join(ident(c) for c in RETURNED_KEYS[name])
    source = sql.SQL("unnest({arrays}) WITH ORDINALITY AS u({names}, _ord)").format(
        arrays=arrays, names=names
    )
    if name == "conversions":
        # The click must exist: looked up in the same statement, so in the same transaction.
        # A live conversion never names a test click (store/test_rows.py, converts).
        statement = sql.SQL(
            "WITH u AS MATERIALIZED (SELECT * FROM {source}), "
            "known AS (SELECT k.click_id, k.test FROM clicks k "
            "WHERE k.click_id IN (SELECT u.click_id FROM u)), "
            "inserted AS (INSERT INTO {table} ({names}) SELECT {picks} FROM u "
            "WHERE EXISTS (SELECT 1 FROM known WHERE known.click_id = u.click_id "
            "AND (u.test OR NOT known.test)) ORDER BY {order} "
            "ON CONFLICT DO NOTHING RETURNING {returned}) "
            "SELECT true, {returned} FROM inserted "
            "UNION ALL SELECT false, {nulls} FROM known"
        ).format(
            source=source,
            table=ident(name),
            names=names,
            picks=picks,
            order=order,
            returned=returned,
            nulls=sql.SQL(", ").join(
                sql.SQL(c) if c in ("click_id", "test") else sql.SQL("NULL")
                for c in RETURNED_KEYS[name]
            ),
        )
    else:
        statement = sql.SQL(
            "INSERT INTO {table} ({names}) SELECT {picks} FROM {source} ORDER BY {order} "
            "ON CONFLICT DO NOTHING RETURNING true, {returned}"
        ).format(
            table=ident(name),
            names=names,
            picks=picks,
            source=source,
            order=order,
            returned=returned,
        )
    return TableWrite(
        name=name,
        columns=columns,
        converters=tuple(_TO_DB.get(types[c], _text) for c in columns),
        statement=statement.as_bytes(),
        key_positions=tuple(columns.index(c) for c in RETURNED_KEYS[name]),
        click_position=columns.index("click_id") if name == "conversions" else None,
    )


def match_results(
    table: TableWrite, rows: Sequence[tuple[Any, ...]], returned: Sequence[Sequence[Any]]
) -> list[RowResult]:
    """Each row's answer from what the statement returned: (true, key...) per inserted row,
    and for conversions (false, NULL..., click test flag, click_id, ...) per click that exists.

    Rows with the same key are inserted in batch order, so the first of them is the INSERTED one.
    """
    inserted: collections.Counter[tuple[Any, ...]] = collections.Counter()
    known: dict[Any, bool] = {}
    # Where a known click's id and test flag sit in its (false, NULL..., ...) record.
    keys = RETURNED_KEYS[table.name]
    click_at = 1 + keys.index("click_id") if table.click_position else 0
    click_test_at = 1 + keys.index("test") if table.click_position else 0
    row_test_at = table.columns.index("test")
    for record in returned:
        if record[0]:
            inserted[tuple(record[1:])] += 1
        else:
            known[record[click_at]] = bool(record[click_test_at])
    results: list[RowResult] = []
    for values in rows:
        if table.click_position is not None:
            click_is_test = known.get(values[table.click_position])
            if click_is_test is None or not converts(click_is_test, values[row_test_at]):
                results.append(InsertResult.CLICK_NOT_FOUND)
                continue
        key = table.key(values)
        if inserted[key] > 0:
            inserted[key] -= 1
            results.append(InsertResult.INSERTED)
        else:
            results.append(InsertResult.DUPLICATE)
    return results


async def column_types(conn: AsyncConn) -> dict[str, dict[str, str]]:
    cursor = await conn.execute(
        "SELECT table_name, column_name, udt_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
        (list(TABLES),),
    )
    types: dict[str, dict[str, str]] = {name: {} for name in TABLES}
    for table, column, udt in await cursor.fetchall():
        types[table][column] = udt
    return types
