"""The shared store: PostgreSQL through psycopg 3, so many processes and nodes serve one database.

Requests' writes go through the group-commit writer, one asyncio task per process (store/writer.py,
TaskWriter), which hands its batches to PostgresSink (store/postgres_sink.py). Every wait is
bounded: a request that cannot be committed within its timeout gets StorageError (503), and the
pool reconnects on its own when PostgreSQL comes back. Administrative writes (the CLI, start-up:
migrations, settings, the operator's actions) are the one other path: plain synchronous
connections, `_admin_connection()` in autocommit and one of its own per `admin` transaction. They
need no process lock: PostgreSQL's row locks order them with the writer's statements, and
migrations take an advisory lock.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import threading
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import datetime
from decimal import Decimal
from importlib import resources
from typing import Any, cast
from urllib.parse import parse_qsl, urlsplit, urlunsplit

import msgspec
import psycopg
import psycopg.conninfo
import psycopg.errors
import psycopg.rows
import psycopg.types.json
from psycopg import sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from thrad_events.config import (
    WRITE_BATCH_MAX_ROWS,
    WRITE_QUEUE_MAX_ROWS,
    WRITE_TIMEOUT_S,
    ConfigError,
)
from thrad_events.deadline import Deadline
from thrad_events.fields import TABLES, Kind, kind_of
from thrad_events.instants import format_time, show_time
from thrad_events.money import plain_text
from thrad_events.store import delivery_reads, test_rows
from thrad_events.store.admin_sql import KEY_SELECT, AdminSession, key_record
from thrad_events.store.base import T
from thrad_events.store.delivery import DeliveryBatch, current_route
from thrad_events.store.dialect import POSTGRES as SQL_DIALECT
from thrad_events.store.errors import StorageError
from thrad_events.store.export_keyset import Keyset, export_condition, next_start_sql
from thrad_events.store.postgres_sink import (
    DeliveryRows,
    KeyTouch,
    PostgresSink,
    PostgresWrite,
    TableRows,
)
from thrad_events.store.postgres_tables import AsyncConn, TableWrite, column_types, table_write
from thrad_events.store.records import ApiKeyRecord, InsertResult, Row, RowResult
from thrad_events.store.tags import TagTable
from thrad_events.store.writer import TaskWriter

log = logging.getLogger(__name__)

CONNECT_TIMEOUT_S = 3
# Past this an unanswered query counts as a dead connection (TCP keepalive and user timeout).
TCP_USER_TIMEOUT_MS = 5000
# The writer's connection, key lookups and readiness pings. Reports have connections of their
# own, one per report thread (reports/run.py): five in all, as before reports left the pool.
POOL_MAX_SIZE = 3
# How long the pool keeps one reconnection attempt going (backoff 1, 2, 4 s) before it starts a
# fresh one on the next request: bounds how long recovery lags behind PostgreSQL's return.
RECONNECT_WINDOW_S = 4.0
KEY_LOOKUP_TIMEOUT_S = 3.0
PING_TIMEOUT_S = 1.0
# A number both migrating processes agree on, with the schema: one migrates, the other waits.
MIGRATION_LOCK = 0x7E4D

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


# -- the store -------------------------------------------------------------------------------


class PostgresStore:
    dialect = SQL_DIALECT

    def __init__(
        self,
        database_url: str,
        *,
        write_batch_max_rows: int = WRITE_BATCH_MAX_ROWS,
        write_queue_max_rows: int = WRITE_QUEUE_MAX_ROWS,
        on_batch: Callable[[int, float], None] | None = None,
        write_timeout_s: float = WRITE_TIMEOUT_S,
    ) -> None:
        self.database_url = database_url
        self._conninfo = conninfo_of(database_url)
        self._write_timeout_s = write_timeout_s
        self._batch_rows = write_batch_max_rows
        self._queue_rows = write_queue_max_rows
        self._on_batch = on_batch
        self._pool: AsyncConnectionPool[AsyncConn] | None = None
        self._writer: TaskWriter[PostgresWrite] | None = None
        self._tables: dict[str, TableWrite] = {}
        self._admin: psycopg.Connection[Any] | None = None
        # Reports run in threads (reports/run.py), each on a connection of its own, kept open.
        self._report_local = threading.local()
        self._report_conns: list[psycopg.Connection[Any]] = []
        self._report_conns_lock = threading.Lock()

    def _unreachable(self, exc: BaseException) -> StorageError:
        first_line = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return StorageError(
            f"PostgreSQL at {redacted(self.database_url)} is not reachable: {first_line}"
        )

    # -- serving -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._writer is not None:
            return
        self._pool = AsyncConnectionPool(
            self._conninfo,
            min_size=1,
            max_size=POOL_MAX_SIZE,
            open=False,
            check=AsyncConnectionPool.check_connection,
            reconnect_timeout=RECONNECT_WINDOW_S,
            kwargs={"autocommit": True},
            name="thrad-events",
        )
        await self._pool.open(wait=False)
        try:
            async with self._pool.connection(timeout=CONNECT_TIMEOUT_S * 2) as conn:
                types = await column_types(conn)
        except (psycopg.Error, PoolTimeout) as exc:
            await self._pool.close()
            self._pool = None
            raise self._unreachable(exc) from exc
        self._tables = {
            name: table_write(name, table.columns, types[name]) for name, table in TABLES.items()
        }
        sink = PostgresSink(
            self._pool,
            self._tables,
            connect_timeout_s=self._write_timeout_s,
            batch_timeout_s=self._write_timeout_s + CONNECT_TIMEOUT_S,
        )
        self._writer = TaskWriter(
            sink,
            max_batch_rows=self._batch_rows,
            max_queue_rows=self._queue_rows,
            write_timeout_s=self._write_timeout_s,
            on_batch=self._on_batch,
        )
        self._writer.start()
        # Serving uses the pool only: the administration connection of start-up is not kept.
        self._close_admin()

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.stop()
            self._writer = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await asyncio.to_thread(self._close_admin)
        await asyncio.to_thread(self._close_report_connections)

    def queue_depth(self) -> int:
        return self._writer.depth() if self._writer is not None else 0

    async def _write(self, table: str, rows: Sequence[Row]) -> list[RowResult]:
        if self._writer is None:
            raise StorageError("store is not started")
        values = self._tables[table].values
        route = current_route.get() if table != "clicks" else None
        results: list[RowResult] = await self._writer.write(
            TableRows(table, [values(row) for row in rows], route), len(rows)
        )
        return results

    async def write_delivery(self, batch: DeliveryBatch) -> int:
        """Rejection rows and counts through the group commit; the rows kept."""
        if self._writer is None:
            raise StorageError("store is not started")
        result = await self._writer.write(DeliveryRows(batch), len(batch.rows) + 1)
        if isinstance(result, StorageError):
            raise result
        return int(result)

    async def _write_one(self, table: str, row: Row) -> InsertResult:
        [result] = await self._write(table, [row])
        if isinstance(result, StorageError):
            raise result
        return result

    async def _write_many(self, table: str, rows: Sequence[Row]) -> list[RowResult]:
        if not rows:
            return []
        results = await self._write(table, rows)
        if all(isinstance(result, StorageError) for result in results):
            raise cast(StorageError, results[0])
        return results

    async def insert_event(self, row: Row) -> InsertResult:
        return await self._write_one("events", row)

    async def insert_events(self, rows: Sequence[Row]) -> list[RowResult]:
        return await self._write_many("events", rows)

    async def insert_conversion(self, row: Row) -> InsertResult:
        return await self._write_one("conversions", row)

    async def insert_conversions(self, rows: Sequence[Row]) -> list[RowResult]:
        return await self._write_many("conversions", rows)

    async def insert_click(self, row: Row) -> InsertResult:
        return await self._write_one("clicks", row)

    @contextlib.asynccontextmanager
    async def _connection(self, timeout_s: float) -> AsyncIterator[AsyncConn]:
        """A pooled connection, or one of its own when not serving (the CLI's reports)."""
        try:
            async with asyncio.timeout(timeout_s), contextlib.AsyncExitStack() as stack:
                if self._pool is not None:
                    conn = await stack.enter_async_context(self._pool.connection(timeout_s))
                else:
                    conn = await stack.enter_async_context(
                        await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
                    )
                yield conn
        except (psycopg.OperationalError, psycopg.InterfaceError, PoolTimeout, TimeoutError) as e:
            raise StorageError(f"storage unavailable: {str(e) or type(e).__name__}") from e

    async def find_key(self, key_hash: str) -> ApiKeyRecord | None:
        async with self._connection(KEY_LOOKUP_TIMEOUT_S) as conn:
            cursor = await conn.execute(KEY_SELECT + " WHERE k.key_hash = %s", (key_hash,))
            found = await cursor.fetchone()
        return key_record(found, SQL_DIALECT) if found is not None else None

    async def click_is_test(self, click_id: str) -> bool | None:
        async with self._connection(KEY_LOOKUP_TIMEOUT_S) as conn:
            cursor = await conn.execute("SELECT test FROM clicks WHERE click_id = %s", (click_id,))
            found = await cursor.fetchone()
        return None if found is None else bool(found[0])

    def touch_key(self, key_id: str, when: datetime) -> None:
        if self._writer is not None:
            self._writer.submit_nowait(KeyTouch(key_id, when))

    async def ping(self) -> bool:
        """True when the writer is not stuck and PostgreSQL answers promptly."""
        if self._writer is None or self._writer.stalled():
            return False
        try:
            async with self._connection(PING_TIMEOUT_S) as conn:
                await conn.execute("SELECT 1")
        except StorageError:
            return False
        return True

    # -- reports -------------------------------------------------------------------------------

    def read(
        self, statement: str, args: Sequence[Any], deadline: Deadline
    ) -> Sequence[Sequence[Any]]:
        timeout_ms = math.floor(deadline.remaining_s() * 1000)
        if timeout_ms <= 0:
            raise deadline.timed_out()
        conn = self._report_connection()
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
                found = conn.execute(statement, args).fetchall()
        except psycopg.errors.QueryCanceled as exc:
            raise deadline.timed_out() from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self._unreachable(exc) from exc
        except (psycopg.DataError, psycopg.ProgrammingError) as exc:
            raise StorageError(f"report failed: {exc}") from exc
        return found

    def rejections(self, query: delivery_reads.RejectionsQuery) -> delivery_reads.RejectionsPage:
        with self._admin_errors():
            return delivery_reads.read_rejections(self._report_connection(), SQL_DIALECT, query)

    def delivery(self, query: delivery_reads.DeliveryQuery) -> list[dict[str, Any]]:
        with self._admin_errors():
            return delivery_reads.read_delivery(self._report_connection(), SQL_DIALECT, query)

    def prune_delivery(self, rejections_before: datetime, counts_before: datetime) -> int:
        def run(delete: Callable[[Any], int]) -> int:
            conn = self._report_connection()
            with conn.transaction():
                return delete(conn)

        with self._admin_errors():
            return delivery_reads.prune(
                run, SQL_DIALECT, rejections_before=rejections_before, counts_before=counts_before
            )

    def _report_connection(self) -> psycopg.Connection[Any]:
        """The calling thread's connection for reports, (re)opened when missing or broken."""
        conn: psycopg.Connection[Any] | None = getattr(self._report_local, "conn", None)
        if conn is not None and not (conn.closed or conn.broken):
            return conn
        if conn is not None:
            conn.close()
        conn = self._connect_admin()
        self._report_local.conn = conn
        with self._report_conns_lock:
            self._report_conns = [c for c in self._report_conns if not c.closed]
            self._report_conns.append(conn)
        return conn

    def _close_report_connections(self) -> None:
        """Once no report runs any more: at shutdown, after the report threads have ended."""
        with self._report_conns_lock:
            conns, self._report_conns = self._report_conns, []
        for conn in conns:
            conn.close()

    # -- administration ----------------------------------------------------------------------

    def _connect_admin(self) -> psycopg.Connection[Any]:
        try:
            conn = psycopg.connect(self._conninfo, autocommit=True)
        except psycopg.Error as exc:
            raise self._unreachable(exc) from exc
        psycopg.types.json.set_json_loads(_json_decoder.decode, conn)
        return conn

    def _admin_connection(self) -> psycopg.Connection[Any]:
        """The one connection administrative reads and writes use, (re)opened when needed."""
        if self._admin is None or self._admin.closed or self._admin.broken:
            self._close_admin()
            self._admin = self._connect_admin()
        return self._admin

    def _close_admin(self) -> None:
        conn, self._admin = self._admin, None
        if conn is not None:
            conn.close()

    @contextlib.contextmanager
    def _admin_errors(self) -> Iterator[None]:
        try:
            yield
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self._unreachable(exc) from exc

    def migrate(self) -> list[int]:
        """Apply the numbered SQL files not applied yet; returns the versions applied now.

        An advisory lock makes processes starting together take turns: the first applies, the
        others then find nothing left to do.
        """
        with self._connect_admin() as conn, self._admin_errors():
            lock = (MIGRATION_LOCK,)
            conn.execute(
                "SELECT pg_advisory_lock(%s, hashtext(coalesce(current_schema(), '')))", lock
            )
            try:
                conn.execute(
                    "CREATE TABLE IF NOT EXISTS schema_migrations (version integer PRIMARY KEY, "
                    "applied_at timestamptz NOT NULL DEFAULT now())"
                )
                done = {v for (v,) in conn.execute("SELECT version FROM schema_migrations")}
                applied = []
                for version, text in migrations("postgres"):
                    if version in done:
                        continue
                    with conn.transaction():
                        conn.execute(text)
                        conn.execute(
                            "INSERT INTO schema_migrations (version) VALUES (%s)", (version,)
                        )
                    applied.append(version)
                return applied
            finally:
                if not conn.broken:
                    conn.execute(
                        "SELECT pg_advisory_unlock(%s, hashtext(coalesce(current_schema(), '')))",
                        lock,
                    )

    def list_keys(self) -> list[ApiKeyRecord]:
        return self.admin(lambda session: session.keys(None, None), write=False)

    def admin(self, work: Callable[[AdminSession], T], *, write: bool = True) -> T:
        # A connection of its own: admin requests run on threads of their own, and the shared
        # administration connection's transaction must not be theirs.
        try:
            with self._admin_errors(), self._connect_admin() as conn, conn.transaction():
                return work(AdminSession(conn, SQL_DIALECT))
        except psycopg.Error as exc:
            raise StorageError(f"administration failed: {exc}") from exc

    def setting(self, name: str, default: str) -> str:
        with self._admin_errors():
            conn = self._admin_connection()
            conn.execute(
                "INSERT INTO settings (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                (name, default),
            )
            found = conn.execute("SELECT value FROM settings WHERE name = %s", (name,))
            return str(found.fetchone()[0])  # type: ignore[index]

    def export_rows(
        self,
        table: str,
        since: datetime | None,
        until: datetime | None = None,
        partner_id: str | None = None,
        limit: int | None = None,
        start: Keyset | None = None,
        include_test: bool = False,
    ) -> Iterator[dict[str, Any]]:
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
        with self._admin_errors():
            # The calling thread's own connection: exports may run on several threads at once.
            conn = self._report_connection()
            # A server-side cursor streams a table of any size in pieces.
            with conn.transaction(), conn.cursor(name=f"export_{table}") as cursor:
                cursor.itersize = 2000
                cursor.execute(query, params)
                for row in cursor:
                    yield {
                        column: _from_db(column, value)
                        for column, value in zip(columns, row, strict=True)
                    }

    def export_next_start(
        self,
        table: str,
        since: datetime | None,
        until: datetime | None,
        partner_id: str | None,
        start: Keyset | None,
        limit: int,
        include_test: bool = False,
    ) -> Keyset | None:
        condition = export_condition(since, until, partner_id, start, SQL_DIALECT, include_test)
        query, params = next_start_sql(table, condition, SQL_DIALECT)
        with self._admin_errors():
            found = self._report_connection().execute(query, [*params, limit]).fetchone()
        return None if found is None else (format_time(found[0]), int(found[1]))

    def purge_test_rows(
        self, before: datetime, batch_rows: int = test_rows.PURGE_BATCH_ROWS
    ) -> dict[str, int]:
        def delete_batch(table: str, key: str, limit: int) -> int:
            statement = test_rows.purge_sql(table, key, "%s", "true")
            with self._admin_errors():
                cursor = self._admin_connection().execute(
                    statement,
                    (before, limit),
                )
            return cursor.rowcount

        return test_rows.purge(delete_batch, batch_rows)

    def tags(self) -> TagTable:
        # One table object per store: it serialises the calls sharing a connection.
        table: TagTable | None = getattr(self, "_tag_table", None)
        if table is not None:
            return table

        def read(run: Callable[[Any], Any]) -> Any:
            with self._admin_errors():
                return run(self._admin_connection())

        self._tag_table = TagTable(read, SQL_DIALECT)
        return self._tag_table

    def close_sync(self) -> None:
        self._close_admin()
        self._close_report_connections()


def migrations(dialect: str) -> list[tuple[int, str]]:
    folder = resources.files("thrad_events.store") / "migrations" / dialect
    found = [
        (int(entry.name.split("_", 1)[0]), entry.read_text())
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)
