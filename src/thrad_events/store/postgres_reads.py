"""PostgreSQL's blocking reads, each on the calling thread's own connection: one statement under
a deadline (a report's: SET LOCAL statement_timeout), and the export's pages, streamed through
a server-side cursor, with their values as SqliteStore's export gives them."""

from __future__ import annotations

import math
from collections.abc import Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from typing import Any

import psycopg
import psycopg.errors
from psycopg import sql

from thrad_events.deadline import Deadline
from thrad_events.fields import TABLES, Kind, kind_of
from thrad_events.instants import format_time, show_time
from thrad_events.money import plain_text
from thrad_events.store.dialect import POSTGRES as SQL_DIALECT
from thrad_events.store.errors import StorageError
from thrad_events.store.export_keyset import Keyset, export_condition, next_start_sql
from thrad_events.store.postgres_connections import BlockingConnections

# Rows a server-side export cursor fetches at a time.
EXPORT_FETCH_ROWS = 2000


def read(
    conns: BlockingConnections, statement: str, args: Sequence[Any], deadline: Deadline
) -> Sequence[Sequence[Any]]:
    timeout_ms = math.floor(deadline.remaining_s() * 1000)
    if timeout_ms <= 0:
        raise deadline.timed_out()
    conn = conns.of_thread()
    try:
        with conn.transaction():
            conn.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
            found = conn.execute(statement, args).fetchall()
    except psycopg.errors.QueryCanceled as exc:
        raise deadline.timed_out() from exc
    except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
        raise conns.unreachable(exc) from exc
    except (psycopg.DataError, psycopg.ProgrammingError) as exc:
        raise StorageError(f"report failed: {exc}") from exc
    return found


def _from_db(column: str, value: Any) -> Any:
    """A stored value as SqliteStore's export gives it."""
    if value is None:
        return None
    kind = kind_of(column)
    if kind is Kind.INSTANT:
        return format_time(value)
    if kind is Kind.SENT_INSTANT:
        return show_time(value)
    if isinstance(value, Decimal):
        return plain_text(value)  # numeric reads back as Decimal('1E-7') for 0.0000001
    return value


def export_rows(
    conns: BlockingConnections,
    table: str,
    since: datetime | None,
    until: datetime | None,
    partner_id: str | None,
    limit: int | None,
    start: Keyset | None,
    include_test: bool,
) -> Iterator[dict[str, Any]]:
    """Store.export_rows."""
    columns = TABLES[table].columns
    query = sql.SQL("SELECT {columns} FROM {table}").format(
        columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
        table=sql.Identifier(table),
    )
    condition = export_condition(since, until, partner_id, start, SQL_DIALECT, include_test)
    params = condition.params
    if condition.sql:
        query += sql.SQL(" WHERE " + condition.sql.replace("?", "%s"))
    # clicks have no id: their key breaks ties instead.
    tie = "click_id" if table == "clicks" else "id"
    query += sql.SQL(" ORDER BY received_at, {}").format(sql.Identifier(tie))
    if limit is not None:
        query += sql.SQL(" LIMIT %s")
        params.append(limit)
    with conns.errors():
        # The calling thread's own connection: exports may run on several threads at once.
        conn = conns.of_thread()
        # A server-side cursor streams a table of any size in pieces.
        with conn.transaction(), conn.cursor(name=f"export_{table}") as cursor:
            cursor.itersize = EXPORT_FETCH_ROWS
            cursor.execute(query, params)
            for row in cursor:
                yield {
                    column: _from_db(column, value)
                    for column, value in zip(columns, row, strict=True)
                }


def export_next_start(
    conns: BlockingConnections,
    table: str,
    since: datetime | None,
    until: datetime | None,
    partner_id: str | None,
    start: Keyset | None,
    limit: int,
    include_test: bool,
) -> Keyset | None:
    """Store.export_next_start."""
    condition = export_condition(since, until, partner_id, start, SQL_DIALECT, include_test)
    query, params = next_start_sql(table, condition, SQL_DIALECT)
    with conns.errors():
        found = conns.of_thread().execute(query, [*params, limit]).fetchone()
    return None if found is None else (format_time(found[0]), int(found[1]))
