"""The embedded store: one SQLite file in WAL mode, synchronous=FULL, written by group commit.

Requests' writes go through the group-commit writer (store/writer.py, with SqliteSink); the
CLI's and start-up's administrative writes through `_write_now`, under the same WriteLock and in
the same transaction. Reads (key lookups, reports, exports) use one connection per thread.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import sqlite3
import threading
from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, cast

from thrad_events.config import WRITE_BATCH_MAX_ROWS, WRITE_QUEUE_MAX_ROWS, WRITE_TIMEOUT_S
from thrad_events.deadline import Deadline
from thrad_events.fields import CLICKS, TABLES
from thrad_events.instants import format_time, utcnow
from thrad_events.store import delivery_reads, test_rows
from thrad_events.store.admin_sql import KEY_SELECT, AdminSession, key_record
from thrad_events.store.base import T
from thrad_events.store.checkpoint import BACKSTOP_PAGES, Checkpointer
from thrad_events.store.delivery import DeliveryBatch, current_route
from thrad_events.store.dialect import SQLITE as SQL_DIALECT
from thrad_events.store.errors import StorageError
from thrad_events.store.export_keyset import Keyset, export_condition, next_start_sql
from thrad_events.store.migration_files import migration_files
from thrad_events.store.records import ApiKeyRecord, InsertResult, Row, RowResult
from thrad_events.store.sqlite_delivery import DeliveryWrite, count_delivered
from thrad_events.store.sqlite_file import sqlite_path
from thrad_events.store.sqlite_values import click_values, conversion_values, event_values, from_db
from thrad_events.store.sqlite_writes import (
    ROWS_PER_STATEMENT,
    ConversionRow,
    ConversionRows,
    EventRows,
    SqliteSink,
    Write,
    WriteLock,
    immediate,
    insert_sql,
)
from thrad_events.store.tags import TagTable
from thrad_events.store.writer import ThreadedWriter

log = logging.getLogger(__name__)

BUSY_TIMEOUT_MS = 5000
# SQLite calls the report's deadline check every this many virtual machine steps (a millisecond
# or so).
REPORT_CHECK_STEPS = 100_000


_CLICK_SQL = insert_sql("clicks", CLICKS.columns)


class SqliteStore:
    dialect = SQL_DIALECT

    def __init__(
        self,
        database_url: str,
        *,
        write_batch_max_rows: int = WRITE_BATCH_MAX_ROWS,
        write_queue_max_rows: int = WRITE_QUEUE_MAX_ROWS,
        on_batch: Callable[[int, float], None] | None = None,
        write_timeout_s: float = WRITE_TIMEOUT_S,
        checkpoint_every_s: float = 1.0,
    ) -> None:
        self.path = sqlite_path(database_url)
        self._local = threading.local()
        self._lock = WriteLock(self.path)
        self._writer = ThreadedWriter(
            SqliteSink(self._connect_writer, self._lock, count_delivered),
            max_batch_rows=write_batch_max_rows,
            max_queue_rows=write_queue_max_rows,
            write_timeout_s=write_timeout_s,
            on_batch=on_batch,
        )
        self._checkpointer = Checkpointer(self._connect, every_s=checkpoint_every_s)

    def _connect(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        connection = sqlite3.connect(
            self.path,
            isolation_level=None,
            check_same_thread=False,
            timeout=BUSY_TIMEOUT_MS / 1000,
            # Room for the writer's multi-row event INSERTs of every size.
            cached_statements=ROWS_PER_STATEMENT + 64,
        )
        connection.execute(f"PRAGMA busy_timeout = {BUSY_TIMEOUT_MS}")
        connection.execute("PRAGMA journal_mode = WAL")
        # FULL: a commit is on disk before the writer answers, so a 204 survives a power cut.
        connection.execute("PRAGMA synchronous = FULL")
        return connection

    def _connect_writer(self) -> sqlite3.Connection:
        connection = self._connect()
        # Checkpoints run on their own thread (store/checkpoint.py); a commit checkpoints only
        # if that thread falls far behind.
        connection.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
        return connection

    def _thread_connection(self) -> sqlite3.Connection:
        """The calling thread's connection (asyncio's default executor threads, the report
        threads, or the CLI's): for reads, and for `_write_now`."""
        connection: sqlite3.Connection | None = getattr(self._local, "connection", None)
        if connection is None:
            connection = self._connect()
            connection.row_factory = sqlite3.Row
            self._local.connection = connection
        return connection

    # -- serving -----------------------------------------------------------------------------

    async def start(self) -> None:
        self._writer.start()
        self._checkpointer.start()

    async def close(self) -> None:
        await asyncio.to_thread(self._writer.stop)
        await asyncio.to_thread(self._checkpointer.stop)

    def queue_depth(self) -> int:
        return self._writer.depth()

    async def insert_event(self, row: Row) -> InsertResult:
        results: list[RowResult] = await self._writer.write(
            EventRows([event_values(row)], current_route.get())
        )
        result = results[0]
        if isinstance(result, StorageError):  # a row refused alone fails its request
            raise result
        return result

    async def insert_events(self, rows: Sequence[Row]) -> list[RowResult]:
        batch = [event_values(row) for row in rows]
        results: list[RowResult] = await self._writer.write(
            EventRows(batch, current_route.get()), len(batch)
        )
        return results

    async def insert_conversion(self, row: Row) -> InsertResult:
        result: InsertResult = await self._writer.write(
            ConversionRow(conversion_values(row), current_route.get())
        )
        return result

    async def insert_conversions(self, rows: Sequence[Row]) -> list[RowResult]:
        batch = [conversion_values(row) for row in rows]
        results: list[RowResult] = await self._writer.write(
            ConversionRows(batch, current_route.get()), len(batch)
        )
        return results

    async def insert_click(self, row: Row) -> InsertResult:
        values = click_values(row)

        def op(connection: sqlite3.Connection) -> InsertResult:
            inserted = connection.execute(_CLICK_SQL, values).rowcount
            return InsertResult.INSERTED if inserted == 1 else InsertResult.DUPLICATE

        result: InsertResult = await self._writer.write(op)
        return result

    async def find_key(self, key_hash: str) -> ApiKeyRecord | None:
        return await asyncio.to_thread(self._find_key, key_hash)

    async def click_is_test(self, click_id: str) -> bool | None:
        return await asyncio.to_thread(self._click_is_test, click_id)

    def _click_is_test(self, click_id: str) -> bool | None:
        try:
            found = (
                self._thread_connection()
                .execute("SELECT test FROM clicks WHERE click_id = ?", (click_id,))
                .fetchone()
            )
        except sqlite3.Error as exc:
            raise StorageError(f"click lookup failed: {exc}") from exc
        return None if found is None else bool(found[0])

    def _find_key(self, key_hash: str) -> ApiKeyRecord | None:
        try:
            found = (
                self._thread_connection()
                .execute(KEY_SELECT + " WHERE k.key_hash = ?", (key_hash,))
                .fetchone()
            )
        except sqlite3.Error as exc:
            raise StorageError(f"key lookup failed: {exc}") from exc
        return key_record(found, SQL_DIALECT) if found is not None else None

    def touch_key(self, key_id: str, when: datetime) -> None:
        stamp = format_time(when)

        def op(connection: sqlite3.Connection) -> None:
            connection.execute(
                "UPDATE api_keys SET last_used_at = ? WHERE key_id = ?", (stamp, key_id)
            )

        self._writer.submit_nowait(op)

    async def ping(self) -> bool:
        """True when a (no-op) transaction goes through the writer promptly: the real path."""
        if self._writer.stalled():
            return False
        try:
            await asyncio.wait_for(self._writer.submit(_noop), 1.0)
        except (TimeoutError, StorageError):
            return False
        return True

    async def write_delivery(self, batch: DeliveryBatch) -> int:
        """Rejection rows and counts through the group commit; the rows kept."""
        result = await self._writer.write(DeliveryWrite(batch), len(batch.rows) + 1)
        if isinstance(result, StorageError):
            raise result
        return int(result)

    # -- reports -------------------------------------------------------------------------------

    def rejections(self, query: delivery_reads.RejectionsQuery) -> delivery_reads.RejectionsPage:
        return delivery_reads.read_rejections(self._thread_connection(), SQL_DIALECT, query)

    def delivery(self, query: delivery_reads.DeliveryQuery) -> list[dict[str, Any]]:
        return delivery_reads.read_delivery(self._thread_connection(), SQL_DIALECT, query)

    def prune_delivery(self, rejections_before: datetime, counts_before: datetime) -> int:
        return delivery_reads.prune(
            self._write_now,
            SQL_DIALECT,
            rejections_before=rejections_before,
            counts_before=counts_before,
        )

    def read(
        self, statement: str, args: Sequence[Any], deadline: Deadline
    ) -> Sequence[Sequence[Any]]:
        connection = self._thread_connection()
        connection.set_progress_handler(deadline.passed, REPORT_CHECK_STEPS)
        try:
            found = connection.execute(statement, args).fetchall()
        except sqlite3.Error as exc:
            if deadline.passed():
                raise deadline.timed_out() from exc
            raise StorageError(f"report failed: {exc}") from exc
        finally:
            connection.set_progress_handler(None, 0)
        return found

    # -- administration ----------------------------------------------------------------------

    def migrate(self) -> list[int]:
        """Apply the numbered SQL files not applied yet; returns the versions applied now.

        Under the write lock, like every write: processes starting together take turns, and
        the later ones find nothing left to do.
        """
        connection = self._connect()
        try:
            with self._lock.held():
                return self._apply_migrations(connection)
        finally:
            connection.close()

    @staticmethod
    def _apply_migrations(connection: sqlite3.Connection) -> list[int]:
        connection.execute(
            "CREATE TABLE IF NOT EXISTS schema_migrations ("
            "version INTEGER PRIMARY KEY, applied_at TEXT NOT NULL)"
        )
        done = {v for (v,) in connection.execute("SELECT version FROM schema_migrations")}
        applied = []
        for version, sql in migration_files("sqlite"):
            if version in done:
                continue
            stamp = format_time(utcnow())
            try:
                connection.executescript(
                    f"BEGIN IMMEDIATE;\n{sql}\n"
                    f"INSERT INTO schema_migrations VALUES ({version}, '{stamp}');\nCOMMIT;"
                )
            except sqlite3.Error:
                if connection.in_transaction:
                    connection.execute("ROLLBACK")
                # Another process may have applied it at the same moment.
                row = connection.execute(
                    "SELECT 1 FROM schema_migrations WHERE version = ?", (version,)
                ).fetchone()
                if row is None:
                    raise
                continue
            applied.append(version)
        return applied

    def _write_now(self, write: Write) -> Any:
        """An administrative write (the CLI's, start-up's), in the calling thread: under the
        lock the writer commits under, in a transaction of its own. Rare and small, so they
        need no queue; taking the lock keeps them from meeting a commit in SQLite's busy
        handler."""
        connection = self._thread_connection()
        with self._lock.held(), immediate(connection):
            return write(connection)

    def list_keys(self) -> list[ApiKeyRecord]:
        return self.admin(lambda session: session.keys(None, None), write=False)

    def admin(self, work: Callable[[AdminSession], T], *, write: bool = True) -> T:
        try:
            if write:
                return cast(T, self._write_now(lambda c: work(AdminSession(c, SQL_DIALECT))))
            return work(AdminSession(self._thread_connection(), SQL_DIALECT))
        except sqlite3.Error as exc:
            raise StorageError(f"administration failed: {exc}") from exc

    def setting(self, name: str, default: str) -> str:
        found = (
            self._thread_connection()
            .execute("SELECT value FROM settings WHERE name = ?", (name,))
            .fetchone()
        )
        if found is not None:
            return str(found[0])

        def write(connection: sqlite3.Connection) -> str:
            connection.execute(
                "INSERT INTO settings (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING",
                (name, default),
            )
            (value,) = connection.execute(
                "SELECT value FROM settings WHERE name = ?", (name,)
            ).fetchone()
            return str(value)

        return str(self._write_now(write))

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
        condition = export_condition(since, until, partner_id, start, SQL_DIALECT, include_test)
        where = f" WHERE {condition.sql}" if condition.sql else ""
        sql = f"SELECT {', '.join(columns)} FROM {table}{where} ORDER BY received_at, rowid"
        params = condition.params
        if limit is not None:
            sql += " LIMIT ?"
            params.append(limit)
        for row in self._thread_connection().execute(sql, params):
            yield {column: from_db(column, row[column]) for column in columns}

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
        sql, params = next_start_sql(table, condition, SQL_DIALECT)
        found = self._thread_connection().execute(sql, [*params, limit]).fetchone()
        return None if found is None else (str(found[0]), int(found[1]))

    def purge_test_rows(
        self, before: datetime, batch_rows: int = test_rows.PURGE_BATCH_ROWS
    ) -> dict[str, int]:
        stamp = format_time(before)

        def delete_batch(table: str, key: str, limit: int) -> int:
            sql = test_rows.purge_sql(table, key, "?", "1")
            return int(self._write_now(lambda c: c.execute(sql, (stamp, limit)).rowcount))

        return test_rows.purge(delete_batch, batch_rows)

    def tags(self) -> TagTable:
        return self._tag_table

    @functools.cached_property
    def _tag_table(self) -> TagTable:
        # One table object per store: it serialises the calls sharing a connection.
        def read(run: Callable[[Any], Any]) -> Any:
            try:
                return run(self._thread_connection())
            except sqlite3.Error as exc:
                raise StorageError(f"tag registry: {exc}") from exc

        return TagTable(read, SQL_DIALECT)

    def close_sync(self) -> None:
        self._writer.stop()
        self._checkpointer.stop()
        self._lock.close()
        connection = getattr(self._local, "connection", None)
        if connection is not None:
            connection.close()
            self._local.connection = None


def _noop(connection: sqlite3.Connection) -> None:
    connection.execute("SELECT 1 FROM schema_migrations LIMIT 1").fetchone()
