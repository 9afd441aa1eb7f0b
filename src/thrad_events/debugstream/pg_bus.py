"""The debugger's bus on PostgreSQL: LISTEN/NOTIFY, which every node sharing the database has.

Each process keeps one connection listening on a channel named after the database and schema
(channels are per database, and several services may share one in different schemas), and one
connection that sends: frames wait in a bounded queue and go out many to a statement. NOTIFY
payloads are capped at 8000 bytes, which the events are fitted under (events.py). When
PostgreSQL is away the debugger is quiet and reconnects on its own; ingest never waits for it.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import logging
from collections import deque
from collections.abc import Callable
from typing import Any

import psycopg
from psycopg import sql

from thrad_events.store.postgres_connections import conninfo_of

log = logging.getLogger(__name__)

# Frames waiting to be sent, at most; past it they are dropped (the debugger is best effort).
MAX_PENDING_FRAMES = 10_000
FRAMES_PER_STATEMENT = 200
RECONNECT_AFTER_S = 1.0
_SEND = "SELECT pg_notify(%s, frame) FROM unnest(%s::text[]) AS frame"


class PostgresNotifyBus:
    def __init__(self, database_url: str) -> None:
        self._conninfo = conninfo_of(database_url)
        self._deliver: Callable[[bytes], None] = lambda frame: None
        self._pending: deque[str] = deque()
        self._wake = asyncio.Event()
        self._channel: str | None = None
        self._listening = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._failing = False
        self.dropped = 0

    async def start(
        self, deliver: Callable[[bytes], None], greeting: Callable[[], bytes | None]
    ) -> None:
        # A notification reaches everyone: a newcomer asks every watcher to announce instead
        # (hub.py's join frame) each time it starts listening.
        self._deliver = deliver
        self._tasks = [
            asyncio.create_task(self._listen(), name="debug-listen"),
            asyncio.create_task(self._publish(), name="debug-notify"),
        ]
        # Streams opened from now on hear everything sent from now on (unless PostgreSQL is
        # down, in which case the service starts anyway: the debugger is not worth an outage).
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._listening.wait(), 5.0)

    def send(self, frame: bytes) -> None:
        if len(self._pending) >= MAX_PENDING_FRAMES:
            self.dropped += 1
            return
        self._pending.append(frame.decode())
        self._wake.set()

    async def tick(self) -> None:
        return None

    async def close(self) -> None:
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task

    async def _connect(self) -> psycopg.AsyncConnection[Any]:
        conn = await psycopg.AsyncConnection.connect(self._conninfo, autocommit=True)
        if self._channel is None:
            cursor = await conn.execute("SELECT current_database(), current_schema()")
            found = await cursor.fetchone()
            place = f"{found[0]}.{found[1]}" if found else ""
            self._channel = "thrad_debug_" + hashlib.sha256(place.encode()).hexdigest()[:16]
        return conn

    def _failed(self, what: str, exc: Exception) -> None:
        if not self._failing:
            log.warning("debug stream: PostgreSQL %s failed (%s); retrying", what, exc)
        self._failing = True

    async def _listen(self) -> None:
        while True:
            try:
                async with await self._connect() as conn:
                    assert self._channel is not None
                    await conn.execute(sql.SQL("LISTEN {}").format(sql.Identifier(self._channel)))
                    self._listening.set()
                    self._failing = False
                    # Whoever watches says so now, not at its next round: this process may
                    # serve a watched partner's request before then.
                    self.send(b"J")
                    async for notice in conn.notifies():
                        self._deliver(notice.payload.encode())
            except psycopg.Error as exc:
                self._failed("listen", exc)
            await asyncio.sleep(RECONNECT_AFTER_S)

    async def _publish(self) -> None:
        conn: psycopg.AsyncConnection[Any] | None = None
        try:
            while True:
                await self._wake.wait()
                self._wake.clear()
                while self._pending:
                    frames = [
                        self._pending.popleft()
                        for _ in range(min(FRAMES_PER_STATEMENT, len(self._pending)))
                    ]
                    try:
                        if conn is None or conn.closed:
                            conn = await self._connect()
                        await conn.execute(_SEND, (self._channel, frames))
                    except psycopg.Error as exc:
                        self.dropped += len(frames)
                        self._failed("notify", exc)
                        if conn is not None:
                            await conn.close()
                        conn = None
                        await asyncio.sleep(RECONNECT_AFTER_S)
        finally:
            if conn is not None:
                await conn.close()
