"""The few expressions in which the stores' report SQL differs (reports/sql.py writes the rest
once): each store's Dialect, and which one a store speaks."""

from __future__ import annotations

from decimal import Decimal
from typing import Any, Protocol

from thrad_events.deadline import Deadline
from thrad_events.reports.aggregate import exact_sum
from thrad_events.store import dialect as store_dialect
from thrad_events.store.base import Store

Fragment = tuple[str, tuple[Any, ...]]


class Dialect(Protocol):
    """The expressions in which stores differ."""

    placeholder: str

    def day(self, column: str) -> str:
        """UTC day of a stored time, as text: 2026-02-19."""
        ...

    def hour(self, column: str) -> str:
        """UTC hour of a stored time, as text: 2026-02-19T18:00:00Z."""
        ...

    def epoch_seconds(self, column: str) -> str:
        """Whole Unix seconds (fraction dropped) of a stored time or ISO-8601 text, an integer."""
        ...

    def from_epoch(self, column: str) -> str:
        """A stored time (what day and hour take) from integer Unix seconds."""
        ...

    def params_text(self, column: str, path: tuple[str, ...]) -> Fragment:
        """The value at `path` in a JSON column as text, like PostgreSQL's #>>: a string
        unquoted, any other value as its JSON text, NULL when absent or null."""
        ...

    def text(self, expression: str) -> str:
        """A group value that sorts by code point (byte order of UTF-8)."""
        ...

    def money_by_currency(self, currency: str, amount: str) -> str:
        """An aggregate of a group's amounts, which money_totals sums exactly per currency."""
        ...

    def money_totals(self, raw: Any, deadline: Deadline) -> dict[str, Decimal]:
        """Exact totals per currency (currency_amounts reads "USD:49.99,EUR:3" text)."""
        ...

    def int_list(self, expression: str) -> str:
        """An aggregate of a group's non-NULL integers, which ints reads back."""
        ...

    def ints(self, raw: Any) -> list[int]: ...


def currency_amounts(raw: str | None, deadline: Deadline) -> dict[str, Decimal]:
    """Exact totals from "USD:49.99,EUR:3,USD:0.01" (codes are 3 letters, amounts digits)."""
    amounts: dict[str, list[str]] = {}
    for pair in raw.split(",") if raw else ():
        currency, _, amount = pair.partition(":")
        amounts.setdefault(currency, []).append(amount)
    return {currency: exact_sum(values, deadline) for currency, values in amounts.items()}


class SqliteDialect:
    placeholder = "?"

    def day(self, column: str) -> str:
        # Stored times are fixed-width UTC text: 2026-02-19T18:00:00.000000Z.
        return f"substr({column}, 1, 10)"

    def hour(self, column: str) -> str:
        return f"substr({column}, 1, 13) || ':00:00Z'"

    def epoch_seconds(self, column: str) -> str:
        return f"CAST(strftime('%s', {column}) AS INTEGER)"

    def from_epoch(self, column: str) -> str:
        return f"strftime('%Y-%m-%dT%H:%M:%SZ', {column}, 'unixepoch')"

    def params_text(self, column: str, path: tuple[str, ...]) -> Fragment:
        # Keys match [A-Za-z0-9_-], so quoting each one makes a valid path that cannot escape.
        json_path = "$" + "".join(f'."{key}"' for key in path)
        # ->> alone would give 1 for true; SQLite parses the JSON once for all three calls.
        sql = (
            f"CASE json_type({column}, ?) WHEN 'text' THEN {column} ->> ? "
            f"WHEN 'null' THEN NULL ELSE {column} -> ? END"
        )
        return sql, (json_path, json_path, json_path)

    def text(self, expression: str) -> str:
        return expression  # SQLite compares text bytewise (BINARY) already

    def money_by_currency(self, currency: str, amount: str) -> str:
        # conversion_value is TEXT holding the digits sent; SQLite has no exact decimal sum.
        return f"group_concat({currency} || ':' || {amount}, ',')"

    def money_totals(self, raw: Any, deadline: Deadline) -> dict[str, Decimal]:
        return currency_amounts(raw, deadline)

    def int_list(self, expression: str) -> str:
        return f"group_concat({expression}, ',')"

    def ints(self, raw: Any) -> list[int]:
        return [int(value) for value in raw.split(",")] if raw else []


SQLITE = SqliteDialect()


class PostgresDialect:
    placeholder = "%s"

    def day(self, column: str) -> str:
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

    def hour(self, column: str) -> str:
        return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":00:00Z"')"""

    def epoch_seconds(self, column: str) -> str:
        return f"floor(extract(epoch FROM {column}))::bigint"

    def from_epoch(self, column: str) -> str:
        return f"to_timestamp({column})"

    def params_text(self, column: str, path: tuple[str, ...]) -> Fragment:
        return f"({column} #>> %s::text[])", (list(path),)

    def text(self, expression: str) -> str:
        return f'({expression}) COLLATE "C"'  # code point order, as SQLite's BINARY

    def money_by_currency(self, currency: str, amount: str) -> str:
        # NUMERIC's text is the digits stored; the exact sum is done by the shared arithmetic.
        return f"string_agg({currency} || ':' || {amount}::text, ',')"

    def money_totals(self, raw: Any, deadline: Deadline) -> dict[str, Decimal]:
        return currency_amounts(raw, deadline)

    def int_list(self, expression: str) -> str:
        return f"array_remove(array_agg({expression}), NULL)"

    def ints(self, raw: Any) -> list[int]:
        return [int(value) for value in raw or ()]


POSTGRES = PostgresDialect()

# Each store's report expressions, by the SQL dialect the store speaks.
_DIALECTS: dict[str, Dialect] = {
    store_dialect.SQLITE.name: SQLITE,
    store_dialect.POSTGRES.name: POSTGRES,
}


def dialect_of(store: Store) -> Dialect:
    return _DIALECTS[store.dialect.name]
