"""The browser Tag registry's tables (tags, tag_origins), with SQL written once for both stores.

`TagSession` runs the statements on one connection inside its caller's transaction: the
operator's changes go through `Store.admin` (store/admin_sql.py `AdminSession.tags()`), so each is
committed together with its audit entry. `TagTable` is the requests' read path (a tag by id, is an
origin registered): each store hands it a way to run a function on a connection. Statements are
written with `?` and given to PostgreSQL with its `%s` (store/dialect.py). Calls are blocking: the
HTTP layer runs them in a thread, behind a short-lived cache (auth/tags.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from thrad_events.store.dialect import SqlDialect

T = TypeVar("T")


class Connection(Protocol):
    """What sqlite3's and psycopg's connections have in common that this module uses."""

    def execute(self, sql: Any, params: Sequence[Any] = ..., /) -> Any: ...


Run = Callable[[Callable[[Connection], T]], T]


@dataclass(frozen=True, slots=True)
class TagRecord:
    """A registered browser Tag: whose it is, and the origins allowed to send for it."""

    tag_id: str
    partner_id: str
    partner_name: str
    origins: tuple[str, ...]
    daily_cap: int | None
    created_at: str
    # A Tag sends live rows only (test rows come from test API keys): the pipeline reads a
    # sender's `test` alike for keys and tags.
    test: bool = False


# Updating a tag: a field left as KEEP is not changed (None is a value: "no cap").
KEEP: Any = object()

_SELECT = (
    "SELECT t.tag_id, t.partner_id, p.name, t.daily_cap, t.created_at "
    "FROM tags t JOIN partners p ON p.partner_id = t.partner_id"
)


class TagSession:
    """The registry's statements on one connection, in the caller's transaction.

    A tag about to change is read `FOR UPDATE` where the dialect locks rows (PostgreSQL), so
    that two changes of its origins take turns instead of meeting in the origins' primary key;
    SQLite's write lock already serialises them.
    """

    def __init__(self, connection: Connection, dialect: SqlDialect) -> None:
        self._connection = connection
        self._dialect = dialect
        self._lock = " FOR UPDATE" if dialect.lock_rows else ""

    def _run(self, sql: str, params: Sequence[Any] = ()) -> Any:
        return self._connection.execute(self._dialect.sql(sql), params)

    def add(
        self,
        *,
        tag_id: str,
        partner_id: str,
        origins: Sequence[str],
        daily_cap: int | None,
        created_at: datetime,
    ) -> bool:
        """Register a tag; False when the tag_id is taken (by any partner)."""
        cursor = self._run(
            "INSERT INTO tags (tag_id, partner_id, daily_cap, created_at) "
            "VALUES (?, ?, ?, ?) ON CONFLICT (tag_id) DO NOTHING",
            (tag_id, partner_id, daily_cap, self._dialect.bind_time(created_at)),
        )
        if cursor.rowcount != 1:
            return False
        self._insert_origins(tag_id, origins)
        return True

    def _insert_origins(self, tag_id: str, origins: Sequence[str]) -> None:
        for origin in origins:
            self._run("INSERT INTO tag_origins (tag_id, origin) VALUES (?, ?)", (tag_id, origin))

    def update(
        self, tag_id: str, *, daily_cap: int | None = KEEP, origins: Sequence[str] = KEEP
    ) -> bool:
        """Change a tag's daily cap and/or replace its origins; False when there is no such tag."""
        found = self._run(f"SELECT 1 FROM tags WHERE tag_id = ?{self._lock}", (tag_id,))
        if found.fetchone() is None:
            return False
        if daily_cap is not KEEP:
            self._run("UPDATE tags SET daily_cap = ? WHERE tag_id = ?", (daily_cap, tag_id))
        if origins is not KEEP:
            self._run("DELETE FROM tag_origins WHERE tag_id = ?", (tag_id,))
            self._insert_origins(tag_id, origins)
        return True

    def find(self, tag_id: str) -> TagRecord | None:
        found = self._records(" WHERE t.tag_id = ?", (tag_id,), None)
        return found[0] if found else None

    def list_tags(self, partner_id: str | None, limit: int | None = None) -> list[TagRecord]:
        """Tags by tag_id, of one partner or of all; at most `limit` of them."""
        where, args = (" WHERE t.partner_id = ?", (partner_id,)) if partner_id else ("", ())
        return self._records(where, args, limit)

    def origin_registered(self, origin: str) -> bool:
        """True when some tag lists `origin` (what a CORS preflight may be answered for)."""
        found = self._run("SELECT 1 FROM tag_origins WHERE origin = ? LIMIT 1", (origin,))
        return found.fetchone() is not None

    def _records(self, where: str, args: tuple[Any, ...], limit: int | None) -> list[TagRecord]:
        sql = _SELECT + where + " ORDER BY t.tag_id"
        if limit is not None:
            sql, args = sql + " LIMIT ?", (*args, limit)
        rows = self._run(sql, args).fetchall()
        origins: dict[str, list[str]] = {}
        if rows:
            ids = [row[0] for row in rows]
            marks = ", ".join("?" for _ in ids)
            for tag_id, origin in self._run(
                f"SELECT tag_id, origin FROM tag_origins WHERE tag_id IN ({marks}) "
                "ORDER BY tag_id, origin",
                ids,
            ).fetchall():
                origins.setdefault(tag_id, []).append(origin)
        return [
            TagRecord(
                tag_id=row[0],
                partner_id=row[1],
                partner_name=row[2],
                origins=tuple(origins.get(row[0], ())),
                daily_cap=row[3],
                created_at=self._dialect.read_time(row[4]),
            )
            for row in rows
        ]


class TagTable:
    """What requests read of the registry, each call on a connection `read` hands it."""

    def __init__(self, read: Run[Any], dialect: SqlDialect) -> None:
        self._read = read
        self._dialect = dialect
        # The stores' administration connections are shared: one call at a time.
        self._lock = threading.Lock()

    def _session(self, conn: Connection) -> TagSession:
        return TagSession(conn, self._dialect)

    def find(self, tag_id: str) -> TagRecord | None:
        with self._lock:
            found: TagRecord | None = self._read(lambda conn: self._session(conn).find(tag_id))
        return found

    def origin_registered(self, origin: str) -> bool:
        """True when some tag lists `origin` (what a CORS preflight may be answered for)."""
        with self._lock:
            return bool(self._read(lambda conn: self._session(conn).origin_registered(origin)))
