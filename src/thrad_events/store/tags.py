"""The browser Tag registry's tables (tags, tag_origins), with SQL written once for both stores.

Each store hands TagTable two ways to reach its database: `read` runs a function on a
connection, `write` runs one inside a transaction of its own (SQLite: under the write lock the
group-commit writer takes; PostgreSQL: on the administration connection). Statements are written
with `?` and given to PostgreSQL with its `%s`. Calls are blocking: the HTTP layer runs them in a
thread, behind a short-lived cache (auth/tags.py).
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol, TypeVar

from thrad_events.store.base import format_time

T = TypeVar("T")


class Cursor(Protocol):
    rowcount: int

    def fetchone(self) -> Any: ...

    def fetchall(self) -> list[Any]: ...


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


class TagTable:
    def __init__(self, read: Run[Any], write: Run[Any], placeholder: str) -> None:
        self._read = read
        self._write = write
        self._placeholder = placeholder
        # The stores' administration connections are shared: one call at a time.
        self._lock = threading.Lock()

    def _sql(self, text: str) -> str:
        return text if self._placeholder == "?" else text.replace("?", self._placeholder)

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

        def write(conn: Connection) -> bool:
            cursor = conn.execute(
                self._sql(
                    "INSERT INTO tags (tag_id, partner_id, daily_cap, created_at) "
                    "VALUES (?, ?, ?, ?) ON CONFLICT (tag_id) DO NOTHING"
                ),
                (tag_id, partner_id, daily_cap, format_time(created_at)),
            )
            if cursor.rowcount != 1:
                return False
            self._insert_origins(conn, tag_id, origins)
            return True

        with self._lock:
            return bool(self._write(write))

    def _insert_origins(self, conn: Connection, tag_id: str, origins: Sequence[str]) -> None:
        for origin in origins:
            conn.execute(
                self._sql("INSERT INTO tag_origins (tag_id, origin) VALUES (?, ?)"),
                (tag_id, origin),
            )

    def update(
        self, tag_id: str, *, daily_cap: int | None = KEEP, origins: Sequence[str] = KEEP
    ) -> bool:
        """Change a tag's daily cap and/or replace its origins; False when there is no such tag."""

        def write(conn: Connection) -> bool:
            found = conn.execute(self._sql("SELECT 1 FROM tags WHERE tag_id = ?"), (tag_id,))
            if found.fetchone() is None:
                return False
            if daily_cap is not KEEP:
                conn.execute(
                    self._sql("UPDATE tags SET daily_cap = ? WHERE tag_id = ?"), (daily_cap, tag_id)
                )
            if origins is not KEEP:
                conn.execute(self._sql("DELETE FROM tag_origins WHERE tag_id = ?"), (tag_id,))
                self._insert_origins(conn, tag_id, origins)
            return True

        with self._lock:
            return bool(self._write(write))

    def find(self, tag_id: str) -> TagRecord | None:
        with self._lock:
            found = self._read(lambda conn: self._records(conn, " WHERE t.tag_id = ?", (tag_id,)))
        return found[0] if found else None

    def list_tags(self, partner_id: str | None = None) -> list[TagRecord]:
        where, args = (" WHERE t.partner_id = ?", (partner_id,)) if partner_id else ("", ())
        with self._lock:
            records: list[TagRecord] = self._read(lambda conn: self._records(conn, where, args))
        return records

    def _records(self, conn: Connection, where: str, args: tuple[Any, ...]) -> list[TagRecord]:
        rows = conn.execute(self._sql(_SELECT + where + " ORDER BY t.tag_id"), args).fetchall()
        origins: dict[str, list[str]] = {}
        if rows:
            sub = "SELECT tag_id FROM tags t" + where
            for tag_id, origin in conn.execute(
                self._sql(
                    f"SELECT tag_id, origin FROM tag_origins WHERE tag_id IN ({sub}) "
                    "ORDER BY tag_id, origin"
                ),
                args,
            ).fetchall():
                origins.setdefault(tag_id, []).append(origin)
        return [
            TagRecord(
                tag_id=row[0],
                partner_id=row[1],
                partner_name=row[2],
                origins=tuple(origins.get(row[0], ())),
                daily_cap=row[3],
                created_at=row[4] if isinstance(row[4], str) else format_time(row[4]),
            )
            for row in rows
        ]

    def origin_registered(self, origin: str) -> bool:
        """True when some tag lists `origin` (what a CORS preflight may be answered for)."""
        sql = self._sql("SELECT 1 FROM tag_origins WHERE origin = ? LIMIT 1")
        with self._lock:
            found = self._read(lambda conn: conn.execute(sql, (origin,)).fetchone())
        return found is not None
