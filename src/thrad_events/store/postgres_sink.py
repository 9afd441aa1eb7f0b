"""The PostgreSQL writer's side: each table's rows in one statement, answered row by row.

The group-commit writer (store/writer.py, TaskWriter) hands PostgresSink everything queued, up
to a few hundred rows, and it stores each table's rows with one statement (postgres_tables.py:
INSERT ... SELECT FROM unnest(arrays) ... ON CONFLICT DO NOTHING RETURNING), so a batch of one
table is one round trip that commits. Dedupe is the unique indexes' alone, never a check before
the insert, so it holds across processes and nodes; a conversion's click is looked up in the
same statement. A row PostgreSQL refuses is found by writing the batch again row by row; a
deadlock with another process's batch is retried; a batch has a deadline, past which its
connection is cancelled and dropped (the pool reconnects on its own when PostgreSQL is back).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import psycopg
import psycopg.errors
from psycopg_pool import AsyncConnectionPool

from thrad_events.store import postgres_delivery
from thrad_events.store.delivery import DeliveryBatch
from thrad_events.store.errors import StorageError
from thrad_events.store.postgres_tables import AsyncConn, TableWrite, match_results
from thrad_events.store.records import RowResult

log = logging.getLogger(__name__)

# Deadlocks between two processes' batches (rows locked in different orders) are retried.
DEADLOCK_RETRIES = 3
# What one bad row causes (a value out of a column's range, ...): that row fails alone.
ROW_REFUSED = (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded)
# Within one batch clicks go first, so a conversion queued with its click finds it.
TABLE_ORDER = ("clicks", "events", "conversions")


# -- the writes ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableRows:
    """One request's rows of one table, as `TableWrite.values`; answered with one RowResult
    per row. `route`: the request's, for the delivery counts (None: not counted)."""

    table: str
    rows: list[tuple[Any, ...]]
    route: str | None = None


@dataclass(frozen=True, slots=True)
class KeyTouch:
    """A key's last use: bookkeeping, written after the batch's rows and never failing them."""

    key_id: str
    when: datetime


@dataclass(frozen=True, slots=True)
class DeliveryRows:
    """Rejection rows and counts from the HTTP side: a transaction of their own after the
    batch's rows, failing alone; answered with the rows kept."""

    batch: DeliveryBatch


PostgresWrite = TableRows | KeyTouch | DeliveryRows


def _broken(conn: AsyncConn | None) -> bool:
    return conn is None or conn.closed or conn.broken


class PostgresSink:
    """The group-commit writer's side of PostgreSQL: one pooled connection, kept between
    batches, and how a batch is written on it."""

    # Whatever a batch fails with, storage is what failed: logged once while it repeats.
    failures: tuple[type[Exception], ...] = (Exception,)

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConn],
        tables: dict[str, TableWrite],
        *,
        connect_timeout_s: float,
        batch_timeout_s: float,
    ) -> None:
        self._pool = pool
        self.tables = tables
        self._connect_timeout_s = connect_timeout_s
        self._batch_timeout_s = batch_timeout_s
        self._conn: AsyncConn | None = None

    async def write(self, ops: list[PostgresWrite]) -> list[Any]:
        results: list[Any] = [None] * len(ops)
        positions: list[int] = []
        writes: list[TableRows] = []
        touches: dict[str, datetime] = {}
        deliveries: list[int] = []
        for index, op in enumerate(ops):
            if isinstance(op, KeyTouch):
                if op.key_id not in touches or touches[op.key_id] < op.when:
                    touches[op.key_id] = op.when
            elif isinstance(op, DeliveryRows):
                deliveries.append(index)
            else:
                positions.append(index)
                writes.append(op)
        if writes:
            answers = await self._write_with_retries(writes)
            for index, answer in zip(positions, answers, strict=True):
                results[index] = answer
        if touches:
            await self._write_touches(touches)
        for index in deliveries:
            results[index] = await self._write_delivery(ops[index])  # type: ignore[arg-type]
        return results

    async def close(self) -> None:
        await self._release(discard=False)

    async def _write_with_retries(self, writes: list[TableRows]) -> list[list[RowResult]]:
        for attempt in range(DEADLOCK_RETRIES):
            conn = await self._connection()
            try:
                async with asyncio.timeout(self._batch_timeout_s):
                    try:
                        return await self._write(conn, writes)
                    except ROW_REFUSED:
                        # A row PostgreSQL refuses: find it by writing the rows one by one.
                        return await self._write_each(conn, writes)
            except (psycopg.errors.DeadlockDetected, psycopg.errors.SerializationFailure):
                if attempt == DEADLOCK_RETRIES - 1:
                    raise
                log.info("batch retried after a deadlock with another writer")
            except BaseException:
                # Lost, timed out or cancelled mid-statement: the connection's state is unknown.
                await self._release(discard=True)
                raise
        raise AssertionError("unreachable")

    async def _connection(self) -> AsyncConn:
        if _broken(self._conn):
            await self._release(discard=True)
            self._conn = await self._pool.getconn(timeout=self._connect_timeout_s)
        assert self._conn is not None
        return self._conn

    async def _release(self, *, discard: bool) -> None:
        conn, self._conn = self._conn, None
        if conn is None:
            return
        if discard and not conn.closed:
            # A statement may still be running (or waiting on a lock) server-side: cancel it,
            # so an abandoned batch does not commit later or hold a connection slot.
            with contextlib.suppress(Exception):
                if not conn.broken:
                    await conn.cancel_safe(timeout=1.0)
            with contextlib.suppress(Exception):
                await conn.close()
        with contextlib.suppress(Exception):
            await self._pool.putconn(conn)  # a closed connection is dropped by the pool

    async def _write(self, conn: AsyncConn, writes: list[TableRows]) -> list[list[RowResult]]:
        by_table: dict[str, list[int]] = {}
        for index, write in enumerate(writes):
            by_table.setdefault(write.table, []).append(index)
        results: list[list[RowResult]] = [[] for _ in writes]
        tables = [name for name in TABLE_ORDER if name in by_table]
        counted = any(write.route is not None for write in writes)
        # One table and nothing to count: one statement in autocommit, so one round trip
        # commits the whole batch. Delivery counts commit with the rows they count.
        transaction = conn.transaction() if len(tables) > 1 or counted else contextlib.nullcontext()
        # In a pipeline BEGIN goes with the first INSERT, and the counts with COMMIT: two round
        # trips for rows and counts instead of four.
        pipeline = conn.pipeline() if counted else contextlib.nullcontext()
        async with pipeline, transaction:
            for name in tables:
                indexes = by_table[name]
                rows = [values for i in indexes for values in writes[i].rows]
                answers = await self._insert(conn, self.tables[name], rows)
                start = 0
                for index in indexes:
                    end = start + len(writes[index].rows)
                    results[index] = answers[start:end]
                    start = end
            if counted:
                await postgres_delivery.add_counts(
                    conn, postgres_delivery.delivered(self._placed(writes), results)
                )
        return results

    def _placed(
        self, writes: Sequence[TableRows]
    ) -> list[tuple[str | None, int, int, Sequence[tuple[Any, ...]]]]:
        """Each write's route, where its partner_id and received_at are, and its rows."""
        placed: list[tuple[str | None, int, int, Sequence[tuple[Any, ...]]]] = []
        for write in writes:
            columns = self.tables[write.table].columns
            if write.route is None or "partner_id" not in columns:
                placed.append((None, 0, 0, write.rows))
            else:
                placed.append(
                    (
                        write.route,
                        columns.index("partner_id"),
                        columns.index("received_at"),
                        write.rows,
                    )
                )
        return placed

    async def _insert(
        self, conn: AsyncConn, table: TableWrite, rows: Sequence[tuple[Any, ...]]
    ) -> list[RowResult]:
        cursor = await conn.execute(table.statement, table.arrays(rows))
        return match_results(table, rows, await cursor.fetchall())

    async def _write_each(self, conn: AsyncConn, writes: list[TableRows]) -> list[list[RowResult]]:
        results: list[list[RowResult]] = []
        for write in writes:
            answers: list[RowResult] = []
            for values in write.rows:
                try:
                    # Each row commits with its own count.
                    async with conn.transaction():
                        [answer] = await self._insert(conn, self.tables[write.table], [values])
                        one = TableRows(write.table, [values], write.route)
                        await postgres_delivery.add_counts(
                            conn, postgres_delivery.delivered(self._placed([one]), [[answer]])
                        )
                except ROW_REFUSED as exc:
                    log.error("write failed for one %s row: %s", write.table, exc)
                    answer = StorageError(f"row refused by PostgreSQL: {exc}")
                answers.append(answer)
            results.append(answers)
        return results

    async def _write_delivery(self, op: DeliveryRows) -> int | StorageError:
        try:
            conn = await self._connection()
            async with asyncio.timeout(self._batch_timeout_s):
                return await postgres_delivery.write_batch(conn, op.batch)
        except Exception as exc:
            # Low priority: the HTTP side keeps its counts and tries again later.
            log.info("rejections not written: %s", exc)
            await self._release(discard=True)
            return StorageError(f"rejections not written: {exc}")

    async def _write_touches(self, touches: dict[str, datetime]) -> None:
        ids = sorted(touches)  # one lock order for every process
        try:
            conn = await self._connection()
            async with asyncio.timeout(self._batch_timeout_s):
                await conn.execute(
                    "UPDATE api_keys k SET last_used_at = t.at "
                    "FROM unnest(%s::text[], %s::timestamptz[]) AS t(key_id, at) "
                    "WHERE k.key_id = t.key_id "
                    "AND (k.last_used_at IS NULL OR k.last_used_at < t.at)",
                    (ids, [touches[i] for i in ids]),
                )
        except Exception as exc:
            # Bookkeeping only: a lost last-used time is not worth failing anything for.
            log.info("last-used times not written: %s", exc)
            await self._release(discard=True)
