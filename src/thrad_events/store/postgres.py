"""The shared store: PostgreSQL through psycopg 3, so many processes and nodes serve one database.

Requests' writes go through the group-commit writer, one asyncio task per process (store/writer.py,
TaskWriter), which hands its batches to PostgresSink (store/postgres_sink.py). Every wait is
bounded: a request that cannot be committed within its timeout gets StorageError (503), and the
pool reconnects on its own when PostgreSQL comes back. Administrative writes (the CLI, start-up:
migrations, settings, the operator's actions) are the one other path: plain synchronous
connections (store/postgres_connections.py), the administration connection in autocommit and
one of its own per `admin` transaction. They need no process lock: PostgreSQL's row locks order
them with the writer's statements, and migrations take an advisory lock. Reports and exports
read on their own threads' connections (store/postgres_reads.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import logging
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, cast

import psycopg
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from thrad_events.config import (
    WRITE_BATCH_MAX_ROWS,
    WRITE_QUEUE_MAX_ROWS,
    WRITE_TIMEOUT_S,
)
from thrad_events.deadline import Deadline
from thrad_events.fields import TABLES
from thrad_events.store import delivery_reads, postgres_reads, test_rows
from thrad_events.store.admin_sql import KEY_SELECT, AdminSession, key_record
from thrad_events.store.base import T
from thrad_events.store.delivery import DeliveryBatch, current_route
from thrad_events.store.dialect import POSTGRES as SQL_DIALECT
from thrad_events.store.errors import StorageError
from thrad_events.store.export_keyset import Keyset
from thrad_events.store.migration_files import migration_files
from thrad_events.store.postgres_connections import CONNECT_TIMEOUT_S, BlockingConnections
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
        self._conns = BlockingConnections(database_url)
        self._write_timeout_s = write_timeout_s
        self._batch_rows = write_batch_max_rows
        self._queue_rows = write_queue_max_rows
        self._on_batch = on_batch
        self._pool: AsyncConnectionPool[AsyncConn] | None = None
        self._writer: TaskWriter[PostgresWrite] | None = None
        self._tables: dict[str, TableWrite] = {}
        # Administration, and the reads on report threads (reports/run.py) and the CLI's.

    # -- serving -----------------------------------------------------------------------------

    async def start(self) -> None:
        if self._writer is not None:
            return
        self._pool = AsyncConnectionPool(
            self._conns.conninfo,
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
            raise self._conns.unreachable(exc) from exc
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
        self._conns.close_admin()

    async def close(self) -> None:
        if self._writer is not None:
            await self._writer.stop()
            self._writer = None
        if self._pool is not None:
            await self._pool.close()
            self._pool = None
        await asyncio.to_thread(self._conns.close)

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
                        await psycopg.AsyncConnection.connect(self._conns.conninfo, autocommit=True)
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
        return postgres_reads.read(self._conns, statement, args, deadline)

    def rejections(self, query: delivery_reads.RejectionsQuery) -> delivery_reads.RejectionsPage:
        with self._conns.errors():
            return delivery_reads.read_rejections(self._conns.of_thread(), SQL_DIALECT, query)

    def delivery(self, query: delivery_reads.DeliveryQuery) -> list[dict[str, Any]]:
        with self._conns.errors():
            return delivery_reads.read_delivery(self._conns.of_thread(), SQL_DIALECT, query)

    def prune_delivery(self, rejections_before: datetime, counts_before: datetime) -> int:
        def run(delete: Callable[[Any], int]) -> int:
            conn = self._conns.of_thread()
            with conn.transaction():
                return delete(conn)

        with self._conns.errors():
            return delivery_reads.prune(
                run, SQL_DIALECT, rejections_before=rejections_before, counts_before=counts_before
            )

    # -- administration ----------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply the numbered SQL files not applied yet; returns the versions applied now.

        An advisory lock makes processes starting together take turns: the first applies, the
        others then find nothing left to do.
        """
        with self._conns.connect() as conn, self._conns.errors():
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
                for version, text in migration_files("postgres"):
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
            with self._conns.errors(), self._conns.connect() as conn, conn.transaction():
                return work(AdminSession(conn, SQL_DIALECT))
        except psycopg.Error as exc:
            raise StorageError(f"administration failed: {exc}") from exc

    def setting(self, name: str, default: str) -> str:
        with self._conns.errors():
            conn = self._conns.admin()
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
        return postgres_reads.export_rows(
            self._conns, table, since, until, partner_id, limit, start, include_test
        )

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
        return postgres_reads.export_next_start(
            self._conns, table, since, until, partner_id, start, limit, include_test
        )

    def purge_test_rows(
        self, before: datetime, batch_rows: int = test_rows.PURGE_BATCH_ROWS
    ) -> dict[str, int]:
        def delete_batch(table: str, key: str, limit: int) -> int:
            statement = test_rows.purge_sql(table, key, "%s", "true")
            with self._conns.errors():
                cursor = self._conns.admin().execute(
                    statement,
                    (before, limit),
                )
            return cursor.rowcount

        return test_rows.purge(delete_batch, batch_rows)

    def tags(self) -> TagTable:
        return self._tag_table

    @functools.cached_property
    def _tag_table(self) -> TagTable:
        # One table object per store: it serialises the calls sharing a connection.
        def read(run: Callable[[Any], Any]) -> Any:
            with self._conns.errors():
                return run(self._conns.admin())

        return TagTable(read, SQL_DIALECT)

    def close_sync(self) -> None:
        self._conns.close()
