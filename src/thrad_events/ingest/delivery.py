"""Delivery accounting on the request side: every refusal of a known key counted, the ones worth
keeping queued, and all of it handed to the group-commit writer in the background.

The endpoint wrapper calls `refused` once per refused request (and the pipeline `items_refused`
for a batch's refused items); both only touch this process's memory. A task hands what gathered
to the writer every half second, and only when the writer's queue is quiet, so keeping
rejections never delays an accepted write. Under a flood at most KEPT_PER_KEY_PER_S rows per key
and second are kept (here, before queueing, and again in the transaction across processes) and
at most MAX_PENDING_ROWS wait; the rest are counted as not kept. A hand-over that fails is
merged back and tried again: counts are never dropped. 429s are counted per key and minute,
never kept; 5xx answers are neither (the client must retry, and its retry is counted).
Stored and duplicate rows are counted by the writer itself (store/delivery.py).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from datetime import UTC, datetime, timedelta

import anyio
import msgspec

from thrad_events.errors import IngestError, Outcome
from thrad_events.store.base import Store
from thrad_events.store.delivery import (
    KEPT_PER_KEY_PER_S,
    KEPT_STATUSES,
    CountKey,
    DeliveryBatch,
    RejectionRow,
    minute_of,
    unkept_counts,
)
from thrad_events.store.delivery_reads import COUNTS_KEPT_DAYS
from thrad_events.store.errors import StorageError
from thrad_events.store.records import ApiKeyRecord

log = logging.getLogger(__name__)

FLUSH_EVERY_S = 0.5
# Rows a process holds for the writer at most; past it, refusals are counted but not kept.
MAX_PENDING_ROWS = 5000
# Rows handed to the writer at once.
ROWS_PER_WRITE = 500
# The writer's queue is quiet enough for rejections below this many waiting rows.
QUIET_QUEUE_ROWS = 64
MAX_MESSAGE_CHARS = 1024
PRUNE_EVERY_S = 3600.0
_encode = msgspec.json.Encoder().encode


class DeliveryRecorder:
    def __init__(
        self,
        store: Store,
        *,
        retention_days: int,
        counted_routes: frozenset[str],
        flush_every_s: float = FLUSH_EVERY_S,
        prune_every_s: float = PRUNE_EVERY_S,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
    ) -> None:
        self._store = store
        # Routes whose requests the delivery report counts (ingest); refusals on the others
        # (a report's bad query) are kept, not counted.
        self._counted_routes = counted_routes
        self._retention = timedelta(days=retention_days)
        self._flush_every_s = flush_every_s
        self._prune_every_s = prune_every_s
        self._clock = clock
        self._pending = DeliveryBatch()
        # key_id -> (the second, rows kept in it): the flood bound, before queueing.
        self._seconds: dict[str, tuple[int, int]] = {}
        self._minute_of: tuple[int, str] = (-1, "")
        self._tasks: list[asyncio.Task[None]] = []

    # -- the request side: memory only ---------------------------------------------------------

    def refused(self, route: str, status: int, error: IngestError, request_id: str) -> None:
        """Count a refused request of a known key, and keep it when its status is kept."""
        partner_id, key_id = error.partner_id, error.key_id
        if partner_id is None or key_id is None or status >= 500:
            return
        if error.outcome is Outcome.UNAUTHORIZED:
            return  # a revoked or expired key: named in the log line, not a valid key's request
        now = self._clock()
        second = int(now.timestamp())
        key = CountKey(partner_id, self._minute(now, second), route, error.outcome.value, key_id)
        pending = self._pending
        counted = route in self._counted_routes
        if counted:
            pending.counts[key] += 1
        if status not in KEPT_STATUSES:
            return
        if len(pending.rows) >= MAX_PENDING_ROWS or not self._admit(key_id, second):
            if counted:
                pending.unkept[key] += 1
            return
        body = error.body or b""
        pending.rows.append(
            RejectionRow(
                received_at=now,
                partner_id=partner_id,
                key_id=key_id,
                route=route,
                status=status,
                code=error.outcome.value,
                message=error.message[:MAX_MESSAGE_CHARS],
                details=_encode(
                    [{"field": d.field, "message": d.message} for d in error.details]
                ).decode(),
                # PostgreSQL text cannot hold NUL: both stores keep the same text.
                request_id=request_id,
                body=body.decode("utf-8", errors="replace").replace("\x00", "\ufffd"),
            )
        )

    def items_refused(self, route: str, key: ApiKeyRecord, errors: Iterable[IngestError]) -> None:
        """Count the refused items of a batch answered 200 (they are not kept one by one)."""
        now = self._clock()
        minute = self._minute(now, int(now.timestamp()))
        for error in errors:
            if error.outcome is not Outcome.UNAVAILABLE:
                code = error.outcome.value
                self._pending.counts[CountKey(key.partner_id, minute, route, code, key.key_id)] += 1

    def _minute(self, now: datetime, second: int) -> str:
        """minute_of(now), formatted once a second at most (it is a strftime); `second` is
        now's, as a Unix time."""
        if second != self._minute_of[0]:
            self._minute_of = (second, minute_of(now))
        return self._minute_of[1]

    def _admit(self, key_id: str, second: int) -> bool:
        last, kept = self._seconds.get(key_id, (second, 0))
        if last != second:
            kept = 0
            if len(self._seconds) > 10_000:  # keys seen long ago; only this second matters
                self._seconds.clear()
        if kept >= KEPT_PER_KEY_PER_S:
            return False
        self._seconds[key_id] = (second, kept + 1)
        return True

    # -- the background side ------------------------------------------------------------------

    def start(self) -> None:
        loop = asyncio.get_running_loop()
        self._tasks = [
            loop.create_task(self._flush_loop(), name="delivery-flush"),
            loop.create_task(self._prune_loop(), name="delivery-prune"),
        ]

    async def stop(self) -> None:
        """End the background tasks, then hand over what is still pending (before the store
        stops its writer)."""
        for task in self._tasks:
            task.cancel()
        for task in self._tasks:
            with contextlib.suppress(asyncio.CancelledError):
                await task
        self._tasks = []
        while self._pending and await self.flush(force=True):
            pass

    async def flush(self, *, force: bool = False) -> bool:
        """Hand what is pending to the writer; False when it was not (busy, or failed)."""
        if not self._pending:
            return False
        if not force and self._store.queue_depth() > QUIET_QUEUE_ROWS:
            return False
        batch = self._take()
        try:
            await self._store.write_delivery(batch)
        except StorageError as exc:
            log.info("rejections and delivery counts kept for later: %s", exc)
            self._put_back(batch)
            return False
        return True

    def _take(self) -> DeliveryBatch:
        pending = self._pending
        batch = DeliveryBatch(pending.rows[:ROWS_PER_WRITE], pending.counts, pending.unkept)
        self._pending = DeliveryBatch(pending.rows[ROWS_PER_WRITE:])
        return batch

    def _put_back(self, batch: DeliveryBatch) -> None:
        self._pending.merge(batch)
        rows = self._pending.rows
        self._pending.unkept.update(unkept_counts(rows[MAX_PENDING_ROWS:]))
        del rows[MAX_PENDING_ROWS:]

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(self._flush_every_s)
            try:
                await self.flush()
            except Exception:
                log.exception("handing rejections to the writer failed")

    async def _prune_loop(self) -> None:
        """Rejections past the retention deleted, at start and then periodically, in short
        transactions on a thread (never on the serving loop)."""
        while True:
            now = self._clock()
            try:
                deleted = await anyio.to_thread.run_sync(
                    self._store.prune_delivery,
                    now - self._retention,
                    now - timedelta(days=COUNTS_KEPT_DAYS),
                )
            except StorageError as exc:
                log.info("old rejections not deleted this time: %s", exc)
            else:
                if deleted:
                    log.info("old rejections deleted", extra={"rows": deleted})
            await asyncio.sleep(self._prune_every_s)
