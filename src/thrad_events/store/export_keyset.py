"""Keyset paging of exports: the SQL that starts a page at a row and finds the next page's first
row, written once for both stores (they differ only in placeholder and time type).

Rows are ordered by (received_at, id), a key no two rows share, so a page starts where the
previous one stopped whatever was inserted meanwhile; nothing is skipped by OFFSET.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from thrad_events.store.test_rows import not_test

if TYPE_CHECKING:
    from thrad_events.store.dialect import SqlDialect

# A row's place in an export: its received_at as format_time text, and its id.
Keyset = tuple[str, int]

# The tables whose rows carry an id and a partner (clicks have neither).
KEYSET_TABLES = ("events", "conversions")


@dataclass(frozen=True, slots=True)
class Condition:
    """A WHERE clause's conjunction (`?` placeholders) and its parameters."""

    sql: str
    params: list[Any]


def export_condition(
    since: datetime | None,
    until: datetime | None,
    partner_id: str | None,
    start: Keyset | None,
    dialect: SqlDialect,
    include_test: bool = False,
) -> Condition:
    """Rows received in [since, until), of `partner_id` when given, from `start` on, live
    rows only unless `include_test`."""
    parts: list[str] = [] if include_test else [not_test()]
    params: list[Any] = []
    if since is not None:
        parts.append("received_at >= ?")
        params.append(dialect.bind_time(since))
    if until is not None:
        parts.append("received_at < ?")
        params.append(dialect.bind_time(until))
    if partner_id is not None:
        parts.append("partner_id = ?")
        params.append(partner_id)
    if start is not None:
        # The first bound alone lets the index on received_at narrow the scan.
        at = dialect.bind_time(datetime.fromisoformat(start[0]))
        parts.append("received_at >= ? AND (received_at > ? OR id >= ?)")
        params.extend((at, at, start[1]))
    return Condition(" AND ".join(parts), params)


def next_start_sql(table: str, condition: Condition, dialect: SqlDialect) -> tuple[str, list[Any]]:
    """The key of the row `limit` rows after the page's start (its last parameter): the next
    page's first row, or nothing when the page is the last. The scan reads only the index."""
    if table not in KEYSET_TABLES:
        raise ValueError(f"{table} has no keyset")
    where = f" WHERE {condition.sql}" if condition.sql else ""
    sql = f"SELECT received_at, id FROM {table}{where} ORDER BY received_at, id LIMIT 1 OFFSET ?"
    return dialect.sql(sql), condition.params
