"""PostgreSQL's connections outside the writer's pool, and how the store names a server it cannot
reach.

A database URL becomes libpq's connection string with our timeouts (conninfo_of); a message
about it never shows the password (redacted). The blocking connections (BlockingConnections):
one administration connection in autocommit, kept while it works; one per reading thread (the
report threads, exports, delivery reads), kept open; and fresh ones for a transaction of their
own. Every failure to reach the server becomes one StorageError naming it.
"""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Iterator
from decimal import Decimal
from typing import Any
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import msgspec
import psycopg
import psycopg.conninfo
import psycopg.types.json

from thrad_events.config import ConfigError
from thrad_events.store.errors import StorageError

CONNECT_TIMEOUT_S = 3
# Past this an unanswered query counts as a dead connection (TCP keepalive and user timeout).
TCP_USER_TIMEOUT_MS = 5000

_json_decoder = msgspec.json.Decoder(float_hook=Decimal)


def redacted(database_url: str) -> str:
    """The URL without its password (in the authority or the query), for messages."""
    parts = urlsplit(database_url)
    netloc = parts.netloc
    if parts.password is not None:
        user, _, host = netloc.rpartition("@")
        netloc = f"{user.partition(':')[0]}:***@{host}"
    query = "&".join(
        f"{name}=***" if name == "password" else f"{name}={value}"
        for name, value in parse_qsl(parts.query, keep_blank_values=True)
    )
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def conninfo_of(database_url: str) -> str:
    """libpq's connection string for a postgresql:// URL, with our timeouts added."""
    try:
        return psycopg.conninfo.make_conninfo(
            database_url,
            connect_timeout=CONNECT_TIMEOUT_S,
            application_name="thrad-events",
            keepalives=1,
            keepalives_idle=5,
            keepalives_interval=2,
            keepalives_count=2,
            tcp_user_timeout=TCP_USER_TIMEOUT_MS,
        )
    except psycopg.ProgrammingError as exc:
        raise ConfigError(f"THRAD_DATABASE_URL: not a PostgreSQL URL ({exc})") from None


class BlockingConnections:
    """The synchronous connections of one store (the CLI's, start-up's, and the threads that
    read: reports, exports, delivery)."""

    def __init__(self, database_url: str) -> None:
        self.database_url = database_url
        self.conninfo = conninfo_of(database_url)
        self._admin: psycopg.Connection[Any] | None = None
        self._local = threading.local()
        self._of_threads: list[psycopg.Connection[Any]] = []
        self._of_threads_lock = threading.Lock()

    def unreachable(self, exc: BaseException) -> StorageError:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return StorageError(
            f"PostgreSQL at {redacted(self.database_url)} is not reachable: {first_line}"
        )

    @contextlib.contextmanager
    def errors(self) -> Iterator[None]:
        """A lost or unreachable server, inside the block, as `unreachable`'s StorageError."""
        try:
            yield
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self.unreachable(exc) from exc

    def connect(self) -> psycopg.Connection[Any]:
        """A fresh connection in autocommit; the caller closes it."""
        try:
            conn = psycopg.connect(self.conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise self.unreachable(exc) from exc
        psycopg.types.json.set_json_loads(_json_decoder.decode, conn)
        return conn

    def admin(self) -> psycopg.Connection[Any]:
        """The one connection administrative reads and writes use, (re)opened when needed."""
        if self._admin is None or self._admin.closed or self._admin.broken:
            self.close_admin()
            self._admin = self.connect()
        return self._admin

    def close_admin(self) -> None:
        conn, self._admin = self._admin, None
        if conn is not None:
            conn.close()

    def of_thread(self) -> psycopg.Connection[Any]:
        """The calling thread's connection for reads, (re)opened when missing or broken."""
        conn: psycopg.Connection[Any] | None = getattr(self._local, "conn", None)
        if conn is not None and not (conn.closed or conn.broken):
            return conn
        if conn is not None:
            conn.close()
        conn = self.connect()
        self._local.conn = conn
        with self._of_threads_lock:
            self._of_threads = [c for c in self._of_threads if not c.closed]
            self._of_threads.append(conn)
        return conn

    def close_threads(self) -> None:
        """Once no thread reads any more: at shutdown, after the report threads have ended."""
        with self._of_threads_lock:
            conns, self._of_threads = self._of_threads, []
        for conn in conns:
            conn.close()

    def close(self) -> None:
        self.close_admin()
        self.close_threads()
