"""How a row's values are stored in SQLite, and read back for the export.

A row becomes a tuple in its table's column order on the request's thread (per-row hot-path
work, so each table's conversions are made once from its fields); JSON is stored as text, times
as format_time's text, amounts as the digits sent, the test flag as 0 or 1.
"""

from __future__ import annotations

import functools
import operator
from collections.abc import Callable
from datetime import datetime
from decimal import Decimal
from typing import Any

import msgspec

from thrad_events.fields import CLICKS, CONVERSIONS, EVENTS, Kind, Table, kind_of
from thrad_events.instants import format_time, shown_time
from thrad_events.money import plain_text
from thrad_events.store.records import Row

_json = msgspec.json.Encoder(decimal_format="number")
_json_decoder = msgspec.json.Decoder(float_hook=Decimal)


@functools.lru_cache(maxsize=64)
def _format_time_cached(moment: datetime) -> str:
    # The rows of one request (a batch) share one received_at: format it once.
    return format_time(moment)


def _instant_to_db(value: Any) -> Any:
    # A text value is a time already written (a row as older versions stored it, in tests).
    return _format_time_cached(value) if isinstance(value, datetime) else value


def _json_to_db(value: Any) -> str:
    return _json.encode(value).decode()


def _decimal_to_db(value: Any) -> Any:
    # TEXT holding the amount as sent, in the plain notation the export promises.
    return plain_text(value) if isinstance(value, Decimal) else value


# How a value of each kind is bound, where it is not bound as it is.
_TO_DB: dict[Kind, Callable[[Any], Any]] = {
    Kind.JSON: _json_to_db,
    Kind.INSTANT: _instant_to_db,
    Kind.SENT_INSTANT: _instant_to_db,
    Kind.DECIMAL: _decimal_to_db,
}


def row_values(row: Row, table: Table) -> tuple[Any, ...]:
    """A row as a tuple in column order, each value in the type SQLite stores."""
    return _row_builder(table)(row)


@functools.cache
def _row_builder(table: Table) -> Callable[[Row], tuple[Any, ...]]:
    """`row_values` for one table, its getter and conversions made once from the table's fields:
    rows become tuples on the request's thread, so this is per-row hot-path work."""
    columns = table.columns
    read_all = operator.itemgetter(*columns)
    converted = tuple(
        (i, _TO_DB[kind_of(column)])
        for i, column in enumerate(columns)
        if kind_of(column) in _TO_DB
    )
    test_at = columns.index("test")

    def build(row: Row) -> tuple[Any, ...]:
        try:
            values = list(read_all(row))
        except KeyError:  # a row without some columns (no enrichment): NULL there
            get = row.get
            values = [get(column) for column in columns]
        for index, convert in converted:
            value = values[index]
            if value is not None:
                values[index] = convert(value)
        values[test_at] = 1 if values[test_at] else 0  # NOT NULL: a row without it is live
        return tuple(values)

    return build


event_values = _row_builder(EVENTS)
conversion_values = _row_builder(CONVERSIONS)
click_values = _row_builder(CLICKS)


def from_db(column: str, value: Any) -> Any:
    """A stored value as the export gives it."""
    kind = kind_of(column)
    if value is not None and kind is Kind.JSON:
        return _json_decoder.decode(value)
    if value is not None and kind is Kind.SENT_INSTANT:
        return shown_time(value)
    if kind is Kind.FLAG:
        return bool(value)
    return value
