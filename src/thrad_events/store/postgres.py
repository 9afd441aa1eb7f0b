"""The shared store: PostgreSQL through psycopg 3, so many processes and nodes serve one database.

Writes go through one asyncio task per process (BatchWriter). It takes whatever is queued, up to
a few hundred rows, and stores each table's rows with one statement,
INSERT ... SELECT FROM unnest(arrays) ... ON CONFLICT DO NOTHING RETURNING, then answers every
row only after that commit. Dedupe is the unique indexes' alone, never a check before the insert,
so it holds across processes and nodes; a conversion's click is looked up in the same statement.
Every wait is bounded: a request that cannot be committed within its timeout gets StorageError
(503), and the pool reconnects on its own when PostgreSQL comes back. Administration (the CLI,
migrations at start-up) uses a plain synchronous connection.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import logging
import math
import secrets
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from importlib import resources
from typing import Any, LiteralString, cast
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
from thrad_events.money import plain_text
from thrad_events.reports.deadline import Deadline
from thrad_events.reports.query import AnyReportQuery
from thrad_events.store import report_sql
from thrad_events.store.base import (
    TABLES,
    ApiKeyRecord,
    InsertResult,
    Row,
    StorageError,
    format_time,
    utcnow,
)
from thrad_events.store.writer import QueueFull, WriterStalled

log = logging.getLogger(__name__)

AsyncConn = psycopg.AsyncConnection[Any]
Result = InsertResult | StorageError

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
# Deadlocks between two processes' batches (rows locked in different orders) are retried.
DEADLOCK_RETRIES = 3
# A number both migrating processes agree on, with the schema: one migrates, the other waits.
MIGRATION_LOCK = 0x7E4D

# Per table: the columns whose values identify a stored row in RETURNING (its unique keys), and
# the order rows are inserted in (a shared order keeps two processes' batches from deadlocking).
RETURNED_KEYS: dict[str, tuple[str, ...]] = {
    "events": ("partner_id", "tag_id", "event_id"),
    "conversions": ("partner_id", "dedupe_key", "click_id", "event_type", "order_id"),
    "clicks": ("click_id",),
}
INSERT_ORDER: dict[str, tuple[str, ...]] = {
    "events": ("partner_id", "tag_id", "event_id"),
    "conversions": ("partner_id", "dedupe_key"),
    "clicks": ("click_id",),
}
# What one bad row causes (a value out of a column's range, ...): that row fails alone.
ROW_REFUSED = (psycopg.DataError, psycopg.IntegrityError, psycopg.errors.ProgramLimitExceeded)
# Within one batch clicks go first, so a conversion queued with its click finds it.
TABLE_ORDER = ("clicks", "events", "conversions")

_json = msgspec.json.Encoder(decimal_format="number")
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


# -- values ----------------------------------------------------------------------------------


def _text(value: Any) -> Any:
    # PostgreSQL text cannot hold NUL; SQLite can. Keep the row, mark where the NUL was.
    if isinstance(value, str):
        return value.replace("\x00", "\ufffd") if "\x00" in value else value
    return value if value is None else str(value)


def _scrub(value: Any) -> Any:
    if isinstance(value, str):
        return _text(value)
    if isinstance(value, dict):
        return {_text(str(k)): _scrub(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_scrub(v) for v in value]
    return value


def _json_text(value: Any) -> str | None:
    if value is None:
        return None
    encoded = _json.encode(value)
    if b"\\u0000" in encoded:  # jsonb refuses NUL inside strings
        encoded = _json.encode(_scrub(value))
    return encoded.decode()


def _timestamp(value: Any) -> datetime | None:
    if value is None or isinstance(value, datetime):
        return value
    return datetime.fromisoformat(str(value))


def _numeric(value: Any) -> Decimal | None:
    return value if value is None or isinstance(value, Decimal) else Decimal(str(value))


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


def _int(value: Any) -> int | None:
    return None if value is None else int(value)


_TO_DB: dict[str, Callable[[Any], Any]] = {
    "jsonb": _json_text,
    "json": _json_text,
    "timestamptz": _timestamp,
    "numeric": _numeric,
    "float8": _float,
    "float4": _float,
    "int8": _int,
    "int4": _int,
    "int2": _int,
    "text": _text,
}


def instant_text(moment: datetime) -> str:
    """conversion_time as the pipeline stores it: UTC ISO-8601 with Z, a fraction only if sent."""
    return moment.astimezone(UTC).isoformat().replace("+00:00", "Z")


def _from_db(column: str, value: Any) -> Any:
    """A stored value as SqliteStore's export gives it."""
    if value is None:
        return None
    if column == "received_at":
        return format_time(value)
    if isinstance(value, datetime):
        return instant_text(value)
    if isinstance(value, Decimal):
        return plain_text(value)  # numeric reads back as Decimal('1E-7') for 0.0000001
    return value


# -- statements ------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class TableWrite:
    """How one table's rows are converted, inserted, and matched back to their answers."""

    name: str
    columns: tuple[str, ...]
    converters: tuple[Callable[[Any], Any], ...]
    statement: sql.Composed
    key_positions: tuple[int, ...]
    click_position: int | None  # conversions: where click_id is

    def values(self, row: Row) -> tuple[Any, ...]:
        return tuple(
            convert(row.get(column))
            for column, convert in zip(self.columns, self.converters, strict=True)
        )

    def arrays(self, rows: Sequence[tuple[Any, ...]]) -> list[list[Any]]:
        return [list(column) for column in zip(*rows, strict=True)]

    def key(self, values: tuple[Any, ...]) -> tuple[Any, ...]:
        return tuple(values[i] for i in self.key_positions)


def _table_write(name: str, columns: tuple[str, ...], types: dict[str, str]) -> TableWrite:
    missing = [column for column in columns if column not in types]
    if missing:
        raise StorageError(
            f"table {name} lacks columns {', '.join(missing)}: run `thrad-events migrate`"
        )
    ident = sql.Identifier
    names = sql.SQL(", ").join(ident(column) for column in columns)
    # JSON travels as text and is parsed by PostgreSQL; everything else in its own type.
    arrays = sql.SQL(", ").join(
        sql.SQL("%b::{}[]").format(sql.SQL("text" if types[c] in ("jsonb", "json") else types[c]))
        for c in columns
    )
    picks = sql.SQL(", ").join(
        sql.SQL("u.{}::{}").format(ident(c), sql.SQL(types[c]))
        if types[c] in ("jsonb", "json")
        else sql.SQL("u.{}").format(ident(c))
        for c in columns
    )
    order = sql.SQL(", ").join(
        [*(sql.SQL("u.{}").format(ident(c)) for c in INSERT_ORDER[name]), sql.SQL("u._ord")]
    )
    returned = sql.SQL(", ").join(ident(c) for c in RETURNED_KEYS[name])
    source = sql.SQL("unnest({arrays}) WITH ORDINALITY AS u({names}, _ord)").format(
        arrays=arrays, names=names
    )
    if name == "conversions":
        # The click must exist: looked up in the same statement, so in the same transaction.
        statement = sql.SQL(
            "WITH u AS MATERIALIZED (SELECT * FROM {source}), "
            "known AS (SELECT k.click_id FROM clicks k "
            "WHERE k.click_id IN (SELECT u.click_id FROM u)), "
            "inserted AS (INSERT INTO {table} ({names}) SELECT {picks} FROM u "
            "WHERE u.click_id IN (SELECT click_id FROM known) ORDER BY {order} "
            "ON CONFLICT DO NOTHING RETURNING {returned}) "
            "SELECT true, {returned} FROM inserted "
            "UNION ALL SELECT false, {nulls} FROM known"
        ).format(
            source=source,
            table=ident(name),
            names=names,
            picks=picks,
            order=order,
            returned=returned,
            nulls=sql.SQL(", ").join(
                sql.SQL("click_id") if c == "click_id" else sql.SQL("NULL")
                for c in RETURNED_KEYS[name]
            ),
        )
    else:
        statement = sql.SQL(
            "INSERT INTO {table} ({names}) SELECT {picks} FROM {source} ORDER BY {order} "
            "ON CONFLICT DO NOTHING RETURNING true, {returned}"
        ).format(
            table=ident(name),
            names=names,
            picks=picks,
            source=source,
            order=order,
            returned=returned,
        )
    return TableWrite(
        name=name,
        columns=columns,
        converters=tuple(_TO_DB.get(types[c], _text) for c in columns),
        statement=statement,
        key_positions=tuple(columns.index(c) for c in RETURNED_KEYS[name]),
        click_position=columns.index("click_id") if name == "conversions" else None,
    )


def match_results(
    table: TableWrite, rows: Sequence[tuple[Any, ...]], returned: Sequence[Sequence[Any]]
) -> list[Result]:
    """Each row's answer from what the statement returned: (true, key...) per inserted row,
    and for conversions (false, NULL..., click_id) per click that exists.

    Rows with the same key are inserted in batch order, so the first of them is the INSERTED one.
    """
    inserted: collections.Counter[tuple[Any, ...]] = collections.Counter()
    known: set[Any] = set()
    # Where a known click's id sits in its (false, NULL..., click_id, ...) record.
    click_at = 1 + RETURNED_KEYS[table.name].index("click_id") if table.click_position else 0
    for record in returned:
        if record[0]:
            inserted[tuple(record[1:])] += 1
        else:
            known.add(record[click_at])
    results: list[Result] = []
    for values in rows:
        if table.click_position is not None and values[table.click_position] not in known:
            results.append(InsertResult.CLICK_NOT_FOUND)
            continue
        key = table.key(values)
        if inserted[key] > 0:
            inserted[key] -= 1
            results.append(InsertResult.INSERTED)
        else:
            results.append(InsertResult.DUPLICATE)
    return results


async def column_types(conn: AsyncConn) -> dict[str, dict[str, str]]:
    cursor = await conn.execute(
        "SELECT table_name, column_name, udt_name FROM information_schema.columns "
        "WHERE table_schema = current_schema() AND table_name = ANY(%s)",
        (list(TABLES),),
    )
    types: dict[str, dict[str, str]] = {name: {} for name in TABLES}
    for table, column, udt in await cursor.fetchall():
        types[table][column] = udt
    return types


# -- the writer ------------------------------------------------------------------------------


@dataclass(slots=True)
class _Pending:
    table: str
    values: tuple[Any, ...]
    future: asyncio.Future[Result]


def _broken(conn: AsyncConn | None) -> bool:
    return conn is None or conn.closed or conn.broken


class BatchWriter:
    """Group commit on asyncio: one task takes what is queued and writes it in one round trip."""

    def __init__(
        self,
        pool: AsyncConnectionPool[AsyncConn],
        tables: dict[str, TableWrite],
        *,
        max_batch_rows: int,
        max_queue_rows: int,
        on_batch: Callable[[int, float], None] | None = None,
        connect_timeout_s: float = 2.0,
        batch_timeout_s: float = 5.0,
        stall_after_s: float = 1.0,
    ) -> None:
        self._pool = pool
        self.tables = tables
        self._max_batch = max_batch_rows
        self._max_queue = max_queue_rows
        self._on_batch = on_batch
        self._connect_timeout_s = connect_timeout_s
        self._batch_timeout_s = batch_timeout_s
        self._stall_after_s = stall_after_s
        self._pending: collections.deque[_Pending] = collections.deque()
        self._touches: dict[str, datetime] = {}
        self._wakeup = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._stopping = False
        self._conn: AsyncConn | None = None
        self._failure: str | None = None
        self._busy_since: float | None = None

    def start(self) -> None:
        if self._task is None:
            self._task = asyncio.get_running_loop().create_task(self._run(), name="pg-writer")

    def depth(self) -> int:
        return len(self._pending)

    def stalled(self) -> bool:
        busy_since = self._busy_since
        return busy_since is not None and time.monotonic() - busy_since > self._stall_after_s

    def submit(self, table: str, rows: Sequence[tuple[Any, ...]]) -> list[asyncio.Future[Result]]:
        """Queue rows; each future resolves after the transaction holding its row committed."""
        if self._task is None or self._stopping:
            raise StorageError("writer is not running")
        if len(self._pending) + len(rows) > self._max_queue:
            raise QueueFull("write queue is full")
        if self.stalled():
            raise WriterStalled("storage is not keeping up; retry shortly")
        loop = asyncio.get_running_loop()
        futures = []
        for values in rows:
            future: asyncio.Future[Result] = loop.create_future()
            self._pending.append(_Pending(table, values, future))
            futures.append(future)
        self._wakeup.set()
        return futures

    def touch(self, key_id: str, when: datetime) -> None:
        """Remember a key's last use; written after the next batch, nobody waits for it."""
        if self._task is not None and not self._stopping:
            self._touches[key_id] = when
            self._wakeup.set()

    async def stop(self, timeout_s: float = 30.0) -> None:
        """Commit everything already queued, then end the task."""
        if self._task is None:
            return
        self._stopping = True
        self._wakeup.set()
        try:
            await asyncio.wait_for(asyncio.shield(self._task), timeout_s)
        except TimeoutError:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        self._task = None
        failed = StorageError("server is shutting down")
        while self._pending:
            _resolve(self._pending.popleft().future, failed)
        await self._release(discard=False)

    async def _run(self) -> None:
        while True:
            if not self._pending:
                if self._touches:
                    await self._write_touches()
                    continue
                if self._stopping:
                    return
                self._wakeup.clear()
                await self._wakeup.wait()
                continue
            batch: list[_Pending] = []
            while self._pending and len(batch) < self._max_batch:
                item = self._pending.popleft()
                if not item.future.done():  # a request that gave up is not written
                    batch.append(item)
            if batch:
                await self._commit(batch)

    async def _commit(self, batch: list[_Pending]) -> None:
        started = time.perf_counter()
        self._busy_since = time.monotonic()
        try:
            results = await self._write_with_retries(batch)
        except Exception as exc:  # every failure becomes an answer: never a hung request
            message = str(exc) or type(exc).__name__
            if self._failure != message:
                log.error("batch of %d rows not committed: %s", len(batch), message)
            self._failure = message
            results = [StorageError(f"storage unavailable: {message}")] * len(batch)
        else:
            if self._failure is not None:
                log.warning("storage is writable again")
            self._failure = None
        finally:
            self._busy_since = None
        if self._on_batch is not None:
            self._on_batch(len(batch), time.perf_counter() - started)
        for item, result in zip(batch, results, strict=True):
            _resolve(item.future, result)

    async def _write_with_retries(self, batch: list[_Pending]) -> list[Result]:
        for attempt in range(DEADLOCK_RETRIES):
            conn = await self._connection()
            try:
                async with asyncio.timeout(self._batch_timeout_s):
                    try:
                        return await self._write(conn, batch)
                    except ROW_REFUSED:
                        # A row PostgreSQL refuses: find it by writing the rows one by one.
                        return await self._write_each(conn, batch)
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

    async def _write(self, conn: AsyncConn, batch: list[_Pending]) -> list[Result]:
        by_table: dict[str, list[int]] = {}
        for index, item in enumerate(batch):
            by_table.setdefault(item.table, []).append(index)
        results: list[Result] = [StorageError("not written")] * len(batch)
        tables = [name for name in TABLE_ORDER if name in by_table]
        # One table: one statement in autocommit, so one round trip commits the whole batch.
        transaction = conn.transaction() if len(tables) > 1 else contextlib.nullcontext()
        async with transaction:
            for name in tables:
                positions = by_table[name]
                rows = [batch[i].values for i in positions]
                answers = await self._insert(conn, self.tables[name], rows)
                for position, answer in zip(positions, answers, strict=True):
                    results[position] = answer
        return results

    async def _insert(
        self, conn: AsyncConn, table: TableWrite, rows: Sequence[tuple[Any, ...]]
    ) -> list[Result]:
        cursor = await conn.execute(table.statement, table.arrays(rows))
        return match_results(table, rows, await cursor.fetchall())

    async def _write_each(self, conn: AsyncConn, batch: list[_Pending]) -> list[Result]:
        results: list[Result] = []
        for item in batch:
            try:
                [answer] = await self._insert(conn, self.tables[item.table], [item.values])
            except ROW_REFUSED as exc:
                log.error("write failed for one %s row: %s", item.table, exc)
                answer = StorageError(f"row refused by PostgreSQL: {exc}")
            results.append(answer)
        return results

    async def _write_touches(self) -> None:
        touches, self._touches = self._touches, {}
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


def _resolve(future: asyncio.Future[Result], result: Result) -> None:
    if not future.done():
        future.set_result(result)


# -- reports ---------------------------------------------------------------------------------


class PostgresDialect:
    placeholder = "%s"

    def day(self, column: str) -> str:
        return f"to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD')"

    def hour(self, column: str) -> str:
        return f"""to_char({column} AT TIME ZONE 'UTC', 'YYYY-MM-DD"T"HH24":00:00Z"')"""

    def epoch_seconds(self, column: str) -> str:
        return f"floor(extract(epoch FROM {column}))::bigint"

    def params_text(self, column: str, path: tuple[str, ...]) -> report_sql.Fragment:
        return f"({column} #>> %s::text[])", (list(path),)

    def text(self, expression: str) -> str:
        return f'({expression}) COLLATE "C"'  # code point order, as SQLite's BINARY

    def money_by_currency(self, currency: str, amount: str) -> str:
        # NUMERIC's text is the digits stored; the exact sum is done by the shared arithmetic.
        return f"string_agg({currency} || ':' || {amount}::text, ',')"

    def money_totals(self, raw: Any, deadline: Deadline) -> dict[str, Decimal]:
        return report_sql.currency_amounts(raw, deadline)

    def int_list(self, expression: str) -> str:
        return f"array_remove(array_agg({expression}), NULL)"

    def ints(self, raw: Any) -> list[int]:
        return [int(value) for value in raw or ()]


POSTGRES = PostgresDialect()


# -- the store -------------------------------------------------------------------------------


class PostgresStore:
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
        self._writer: BatchWriter | None = None
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
        tables = {
            name: _table_write(name, columns, types[name]) for name, columns in TABLES.items()
        }
        self._writer = BatchWriter(
            self._pool,
            tables,
            max_batch_rows=self._batch_rows,
            max_queue_rows=self._queue_rows,
            on_batch=self._on_batch,
            connect_timeout_s=self._write_timeout_s,
            batch_timeout_s=self._write_timeout_s + CONNECT_TIMEOUT_S,
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

    def _running(self) -> BatchWriter:
        if self._writer is None:
            raise StorageError("store is not started")
        return self._writer

    async def _write(self, table: str, rows: Sequence[Row]) -> list[Result]:
        writer = self._running()
        write = writer.tables[table]
        futures = writer.submit(table, [write.values(row) for row in rows])
        try:
            return list(await asyncio.wait_for(asyncio.gather(*futures), self._write_timeout_s))
        except TimeoutError:
            # The rows may still commit later; a retry with the same event_id or
            # Idempotency-Key is then answered as a duplicate, so nothing is counted twice.
            raise StorageError("storage did not commit in time") from None

    async def _write_one(self, table: str, row: Row) -> InsertResult:
        [result] = await self._write(table, [row])
        if isinstance(result, StorageError):
            raise result
        return result

    async def _write_many(self, table: str, rows: Sequence[Row]) -> list[Result]:
        if not rows:
            return []
        results = await self._write(table, rows)
        if all(isinstance(result, StorageError) for result in results):
            raise cast(StorageError, results[0])
        return results

    async def insert_event(self, row: Row) -> InsertResult:
        return await self._write_one("events", row)

    async def insert_events(self, rows: Sequence[Row]) -> list[Result]:
        return await self._write_many("events", rows)

    async def insert_conversion(self, row: Row) -> InsertResult:
        return await self._write_one("conversions", row)

    async def insert_conversions(self, rows: Sequence[Row]) -> list[Result]:
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
            cursor = conn.cursor(row_factory=psycopg.rows.dict_row)
            await cursor.execute(_KEY_SELECT + " WHERE k.key_hash = %s", (key_hash,))
            found = await cursor.fetchone()
        return _key_record(found) if found is not None else None

    def touch_key(self, key_id: str, when: datetime) -> None:
        if self._writer is not None:
            self._writer.touch(key_id, when)

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

    def report(self, query: AnyReportQuery, deadline: Deadline) -> list[dict[str, Any]]:
        prepared = report_sql.prepare(query, POSTGRES)
        timeout_ms = math.floor(deadline.remaining_s() * 1000)
        if timeout_ms <= 0:
            raise deadline.timed_out()
        conn = self._report_connection()
        try:
            with conn.transaction():
                conn.execute(f"SET LOCAL statement_timeout = {timeout_ms}")
                found = conn.execute(prepared.sql, prepared.args).fetchall()
        except psycopg.errors.QueryCanceled as exc:
            raise deadline.timed_out() from exc
        except (psycopg.OperationalError, psycopg.InterfaceError) as exc:
            raise self._unreachable(exc) from exc
        except (psycopg.DataError, psycopg.ProgrammingError) as exc:
            raise StorageError(f"report failed: {exc}") from exc
        return prepared.rows(found, deadline)

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

    def _conn(self) -> psycopg.Connection[Any]:
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

    def ensure_partner(self, name: str) -> str:
        with self._admin_errors():
            conn = self._conn()
            conn.execute(
                "INSERT INTO partners (partner_id, name, created_at) VALUES (%s, %s, %s) "
                "ON CONFLICT (name) DO NOTHING",
                ("ptn_" + secrets.token_hex(8), name, utcnow()),
            )
            found = conn.execute("SELECT partner_id FROM partners WHERE name = %s", (name,))
            return str(found.fetchone()[0])  # type: ignore[index]

    def add_key(
        self,
        *,
        key_id: str,
        partner_id: str,
        label: str,
        key_hash: str,
        key_prefix: str,
        created_at: datetime,
        expires_at: datetime | None,
        rate_limit: int | None,
    ) -> None:
        with self._admin_errors():
            self._conn().execute(
                "INSERT INTO api_keys (key_id, partner_id, label, key_hash, key_prefix, "
                "created_at, expires_at, rate_limit) VALUES (%s, %s, %s, %s, %s, %s, %s, %s)",
                (
                    key_id,
                    partner_id,
                    label,
                    key_hash,
                    key_prefix,
                    created_at,
                    expires_at,
                    rate_limit,
                ),
            )

    def list_keys(self) -> list[ApiKeyRecord]:
        with self._admin_errors():
            cursor = self._conn().cursor(row_factory=psycopg.rows.dict_row)
            rows = cursor.execute(_KEY_SELECT + " ORDER BY k.created_at, k.key_id").fetchall()
        return [_key_record(row) for row in rows]

    def revoke_key(self, key_id: str, when: datetime) -> bool:
        with self._admin_errors():
            conn = self._conn()
            cursor = conn.execute(
                "UPDATE api_keys SET revoked_at = %s WHERE key_id = %s AND revoked_at IS NULL",
                (when, key_id),
            )
            if cursor.rowcount:
                return True
            found = conn.execute("SELECT 1 FROM api_keys WHERE key_id = %s", (key_id,))
            return found.fetchone() is not None

    def set_rate_limit(self, key_id: str, per_s: int | None) -> bool:
        with self._admin_errors():
            cursor = self._conn().execute(
                "UPDATE api_keys SET rate_limit = %s WHERE key_id = %s", (per_s, key_id)
            )
            return cursor.rowcount == 1

    def count_keys(self) -> int:
        with self._admin_errors():
            found = self._conn().execute("SELECT count(*) FROM api_keys").fetchone()
        return int(found[0]) if found else 0

    def setting(self, name: str, default: str) -> str:
        with self._admin_errors():
            conn = self._conn()
            conn.execute(
                "INSERT INTO settings (name, value) VALUES (%s, %s) ON CONFLICT (name) DO NOTHING",
                (name, default),
            )
            found = conn.execute("SELECT value FROM settings WHERE name = %s", (name,))
            return str(found.fetchone()[0])  # type: ignore[index]

    def export_rows(self, table: str, since: datetime | None) -> Iterator[dict[str, Any]]:
        columns = TABLES[table]
        query = sql.SQL("SELECT {columns} FROM {table}").format(
            columns=sql.SQL(", ").join(sql.Identifier(c) for c in columns),
            table=sql.Identifier(table),
        )
        params: tuple[Any, ...] = ()
        if since is not None:
            query += sql.SQL(" WHERE received_at >= %s")
            params = (since,)
        # clicks have no id: their key breaks ties instead.
        tie = "click_id" if table == "clicks" else "id"
        query += sql.SQL(" ORDER BY received_at, {}").format(sql.Identifier(tie))
        with self._admin_errors():
            conn = self._conn()
            # A server-side cursor streams a table of any size in pieces.
            with conn.transaction(), conn.cursor(name=f"export_{table}") as cursor:
                cursor.itersize = 2000
                cursor.execute(query, params)
                for row in cursor:
                    yield {
                        column: _from_db(column, value)
                        for column, value in zip(columns, row, strict=True)
                    }

    def close_sync(self) -> None:
        self._close_admin()
        self._close_report_connections()


_KEY_SELECT: LiteralString = (
    "SELECT k.key_id, k.partner_id, p.name AS partner_name, k.label, k.key_hash, k.key_prefix, "
    "k.created_at, k.expires_at, k.revoked_at, k.last_used_at, k.rate_limit "
    "FROM api_keys k JOIN partners p ON p.partner_id = k.partner_id"
)


def _time_text(value: datetime | None) -> str | None:
    return format_time(value) if value is not None else None


def _key_record(row: dict[str, Any]) -> ApiKeyRecord:
    return ApiKeyRecord(
        key_id=row["key_id"],
        partner_id=row["partner_id"],
        partner_name=row["partner_name"],
        label=row["label"],
        key_hash=row["key_hash"],
        key_prefix=row["key_prefix"],
        created_at=format_time(row["created_at"]),
        expires_at=_time_text(row["expires_at"]),
        revoked_at=_time_text(row["revoked_at"]),
        last_used_at=_time_text(row["last_used_at"]),
        rate_limit=row["rate_limit"],
    )


def migrations(dialect: str) -> list[tuple[int, str]]:
    folder = resources.files("thrad_events.store") / "migrations" / dialect
    found = [
        (int(entry.name.split("_", 1)[0]), entry.read_text())
        for entry in folder.iterdir()
        if entry.name.endswith(".sql")
    ]
    return sorted(found)
