"""BackgroundSender: collect without waiting, from a bounded queue a worker thread drains.

`collect()` only encodes the event and appends it to an in-memory queue; it never blocks and
never does I/O. A full queue drops the event and counts it. A daemon thread sends the queue in
batches (POST /v1/api/collect/batch) when `flush_at` events are waiting, when the oldest has
waited `flush_interval_s`, on `flush()`, on `close()` and at interpreter exit. A server without
the batch endpoint (404) is then sent single collects. Each request is retried by the client.

Nothing is lost silently: every event ends either sent (stored or a duplicate) or dropped, and
every drop is counted, logged and passed to `on_error` with the events concerned. Give events an
`event_id`: a batch retried after a lost answer is then stored exactly once.
"""

from __future__ import annotations

import atexit
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from thrad_events.client import wire
from thrad_events.client.errors import (
    APIConnectionError,
    APIError,
    EventDroppedError,
    NotFoundError,
    PayloadTooLargeError,
    RateLimitError,
    RequestTimeoutError,
    ServerError,
    ThradError,
)
from thrad_events.client.sync import Thrad

log = logging.getLogger("thrad_events.client")

OnError = Callable[[ThradError, list[dict[str, Any]]], None]
"""Called with the reason and the events dropped, from the worker or the caller's thread."""

# The server refuses bodies over 1 MiB; batches stay well under it.
MAX_BATCH_BYTES = 512 * 1024


@dataclass(frozen=True, slots=True)
class SenderStats:
    """Counters since start: events sent (stored or duplicate), retried requests, events
    dropped (queue full, refused by the server, or undeliverable), and events still queued."""

    sent: int
    retried: int
    dropped: int
    queued: int


@dataclass(frozen=True, slots=True)
class _Queued:
    enqueued_at: float
    body: dict[str, Any]
    encoded: bytes


class BackgroundSender:
    """A non-blocking, batching sender of collect events through a `Thrad` client.

    The client stays the caller's: close the sender first, then the client.
    """

    def __init__(
        self,
        client: Thrad,
        *,
        max_queue_size: int = 10_000,
        flush_at: int = 100,
        flush_interval_s: float = 0.5,
        batch: bool = True,
        on_error: OnError | None = None,
        exit_timeout_s: float = 10.0,
    ) -> None:
        if not 1 <= flush_at <= wire.MAX_BATCH_ITEMS:
            raise ValueError(f"flush_at must be between 1 and {wire.MAX_BATCH_ITEMS}")
        if max_queue_size < 1:
            raise ValueError("max_queue_size must be at least 1")
        if flush_interval_s <= 0:
            raise ValueError("flush_interval_s must be positive")
        self._client = client
        self._max_queue_size = max_queue_size
        self._flush_at = flush_at
        self._flush_interval_s = flush_interval_s
        self._batch = batch
        self._on_error = on_error
        self._exit_timeout_s = exit_timeout_s
        self._cond = threading.Condition()
        self._queue: deque[_Queued] = deque()
        self._accepted = 0  # events queued since start
        self._finished = 0  # of those, events sent or dropped
        self._in_flight = 0  # taken off the queue, not yet finished
        self._overflowing = False  # logs a full queue once per episode, not once per event
        self._flush_target = 0  # send without waiting until _finished reaches this
        self._closed = False
        self._sent = 0
        self._retried = 0
        self._dropped = 0
        self._thread = threading.Thread(target=self._run, name="thrad-sender", daemon=True)
        self._thread.start()
        atexit.register(self._at_exit)

    # -- the caller's side -------------------------------------------------------------------

    def collect(self, event_name: str, **fields: Any) -> bool:
        """Queue one event; False when it was dropped instead (queue full or sender closed).

        A field that cannot be sent as JSON raises TypeError or ValueError here, at the call.
        """
        body = wire.collect_body(event_name, fields)
        item = _Queued(time.monotonic(), body, wire.dumps(body))
        with self._cond:
            if self._closed:
                reason = EventDroppedError("the sender is closed", code="sender_closed")
            elif len(self._queue) >= self._max_queue_size:
                reason = EventDroppedError(
                    f"the queue is full ({self._max_queue_size} events)", code="queue_full"
                )
            else:
                self._queue.append(item)
                self._accepted += 1
                self._overflowing = False
                # Wake the worker when its wait changes: a first event starts the interval.
                if len(self._queue) == 1 or len(self._queue) >= self._flush_at:
                    self._cond.notify_all()
                return True
            self._dropped += 1
            first_drop, self._overflowing = not self._overflowing, True
        if first_drop:
            log.warning("thrad sender dropping events: %s", reason.message)
        self._report(reason, [body])
        return False

    def flush(self, timeout_s: float | None = None) -> bool:
        """Send everything queued so far now; True once all of it is sent or dropped."""
        with self._cond:
            target = self._accepted
            self._flush_target = max(self._flush_target, target)
            self._cond.notify_all()
            return self._cond.wait_for(lambda: self._finished >= target, timeout_s)

    def close(self, timeout_s: float | None = 10.0) -> None:
        """Stop taking events, send what is queued, stop the worker. Idempotent.

        Events still queued when `timeout_s` runs out are dropped, counted and reported.
        """
        with self._cond:
            already = self._closed
            self._closed = True
            self._cond.notify_all()
        if already:
            return
        atexit.unregister(self._at_exit)
        self._thread.join(timeout_s)
        if not self._thread.is_alive():
            return
        with self._cond:
            left = list(self._queue)
            self._queue.clear()
            self._finished += len(left)
            self._dropped += len(left)
            in_flight = self._in_flight
            self._cond.notify_all()
        log.warning(
            "thrad sender closed after %ss: %d events dropped unsent, %d still being sent",
            timeout_s,
            len(left),
            in_flight,
        )
        if left:
            reason = EventDroppedError(
                f"{len(left)} events not sent before close timed out", code="not_sent_at_close"
            )
            self._report(reason, [item.body for item in left])

    @property
    def stats(self) -> SenderStats:
        with self._cond:
            return SenderStats(self._sent, self._retried, self._dropped, len(self._queue))

    @property
    def sent(self) -> int:
        return self.stats.sent

    @property
    def retried(self) -> int:
        return self.stats.retried

    @property
    def dropped(self) -> int:
        return self.stats.dropped

    def __enter__(self) -> BackgroundSender:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    def _at_exit(self) -> None:
        self.close(self._exit_timeout_s)

    # -- the worker's side -------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            items = self._next_batch()
            if items is None:
                return
            try:
                self._deliver(items)
            except Exception as exc:  # a bug must not kill the worker and strand the queue
                log.exception("thrad sender: unexpected error while sending")
                self._drop(APIError(f"unexpected error while sending: {exc!r}"), items)
            with self._cond:
                self._finished += len(items)
                self._in_flight = 0
                self._cond.notify_all()

    def _next_batch(self) -> list[_Queued] | None:
        """Wait until a batch is due and take it off the queue; None when closed and empty."""
        with self._cond:
            while True:
                if self._queue and self._due():
                    break
                if self._closed and not self._queue:
                    return None
                if self._queue:
                    wait_s = self._queue[0].enqueued_at + self._flush_interval_s - time.monotonic()
                    self._cond.wait(max(wait_s, 0.001))
                else:
                    self._cond.wait()
            items = [self._queue.popleft()]
            size = len(items[0].encoded)
            while self._queue and len(items) < self._flush_at:
                size += len(self._queue[0].encoded) + 1
                if size > MAX_BATCH_BYTES:
                    break
                items.append(self._queue.popleft())
            self._in_flight = len(items)
            return items

    def _due(self) -> bool:
        return (
            self._closed
            or len(self._queue) >= self._flush_at
            or self._flush_target > self._finished
            or time.monotonic() >= self._queue[0].enqueued_at + self._flush_interval_s
        )

    def _deliver(self, items: list[_Queued]) -> None:
        if self._batch and len(items) > 1:
            try:
                result = self._client.send_encoded_collects(
                    [item.encoded for item in items], batch=True, on_retry=self._count_retry
                )
            except NotFoundError:
                log.info("thrad sender: no batch endpoint on the server, sending one by one")
                self._batch = False
            except PayloadTooLargeError:
                half = len(items) // 2
                self._deliver(items[:half])
                self._deliver(items[half:])
                return
            except ThradError as exc:
                self._drop(exc, items)
                return
            else:
                assert result is not None
                for position, answer in enumerate(result.results):
                    if answer.error is not None:
                        self._drop(answer.error, [items[position]])
                    else:
                        self._count_sent(1)
                return
        self._deliver_one_by_one(items)

    def _deliver_one_by_one(self, items: list[_Queued]) -> None:
        for position, item in enumerate(items):
            try:
                self._client.send_encoded_collects(
                    [item.encoded], batch=False, on_retry=self._count_retry
                )
            except (APIConnectionError, RequestTimeoutError, RateLimitError, ServerError) as exc:
                # Retries are spent: the server is down or saturated, so do not make every
                # remaining event wait out its own retries.
                self._drop(exc, items[position:])
                return
            except ThradError as exc:
                self._drop(exc, [item])
            else:
                self._count_sent(1)

    def _count_sent(self, n: int) -> None:
        with self._cond:
            self._sent += n

    def _count_retry(self, attempt: int, error: ThradError, delay_s: float) -> None:
        with self._cond:
            self._retried += 1

    def _drop(self, error: ThradError, items: list[_Queued]) -> None:
        with self._cond:
            self._dropped += len(items)
        log.warning("thrad sender dropped %d events: %s", len(items), error)
        self._report(error, [item.body for item in items])

    def _report(self, error: ThradError, bodies: list[dict[str, Any]]) -> None:
        if self._on_error is None:
            return
        try:
            self._on_error(error, bodies)
        except Exception:
            log.exception("thrad sender: on_error raised")
