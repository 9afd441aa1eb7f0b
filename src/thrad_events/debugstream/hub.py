"""This process's side of the event debugger: its open streams, and who watches anywhere.

Every process hears every other through a bus (bus.py, pg_bus.py). A process with streams open
announces, once a second, the partners they watch (a lease, good for LEASE_TTL_S); every process
keeps the leases it heard in `_leases`. The request path reads `active` (is any stream open
anywhere?) before doing anything, and `wants(partner_id)` before building an event, so that a
service nobody watches pays one attribute read per request.

A stream's queue is bounded: a reader that does not keep up loses events, counted, and is told
how many it missed; memory never grows with a slow reader. Streams per partner and per process
are capped, as each holds a connection and a task.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from collections import defaultdict, deque
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from typing import Any, Protocol

import msgspec

from thrad_events.debugstream import capture as captures
from thrad_events.debugstream.capture import Capture
from thrad_events.debugstream.events import encode_event, request_event
from thrad_events.errors import IngestError, Outcome, RateLimited, Unavailable

log = logging.getLogger(__name__)

# An operator's stream (the admin token) watches every partner.
ALL = "*"
LEASE_EVERY_S = 1.0
# A lease outlives several missed announcements: a watcher's loop or bus held up for a few
# seconds (a loaded machine, a reconnect) must not hide the partner's requests meanwhile. The
# price: requests are still noted for this long after the last stream closed.
LEASE_TTL_S = 10 * LEASE_EVERY_S
QUEUE_MAX_EVENTS = 1000
STREAMS_PER_PARTNER = 5
STREAMS_PER_PROCESS = 50
# Frames on the bus, each one line of text: a lease (b"L" + a JSON list of the watched), an
# event for a partner (b"E" + partner id + b" " + the event's JSON), or a process joining
# (b"J", from a bus that cannot greet a newcomer directly: every watcher announces at once).
_LEASE, _EVENT, _JOIN = b"L", b"E", b"J"


class Bus(Protocol):
    """Carries frames to every process of the service, this one included."""

    async def start(
        self, deliver: Callable[[bytes], None], greeting: Callable[[], bytes | None]
    ) -> None:
        """Deliver every frame heard to `deliver`; `greeting` is what a process that just
        joined must hear from this one first (its leases), where the bus can address it."""

    def send(self, frame: bytes) -> None:
        """Never blocks; a frame that cannot be queued is dropped."""

    async def tick(self) -> None:
        """Once a second: find new processes, forget gone ones."""

    async def close(self) -> None: ...


class Subscription:
    """One open stream: a bounded queue of event payloads and how many did not fit."""

    def __init__(self, partner_id: str | None, max_events: int) -> None:
        self.watches = partner_id or ALL
        self.partner_id = partner_id
        self.max_events = max_events
        self.queue: deque[bytes] = deque()
        self.missed = 0
        self.wake = asyncio.Event()
        # Set once this process has heard its own lease back: the stream is live everywhere
        # the bus reaches as fast as it reaches this process.
        self.ready = asyncio.Event()
        self.closing = False
        # The client went away: nothing more is sent.
        self.gone = False

    def offer(self, payload: bytes) -> None:
        if len(self.queue) >= self.max_events:
            self.missed += 1
        else:
            self.queue.append(payload)
        self.wake.set()

    def take(self) -> tuple[list[bytes], int]:
        """Everything queued, and how many were missed since the last take."""
        payloads, missed = list(self.queue), self.missed
        self.queue.clear()
        self.missed = 0
        return payloads, missed

    def close(self) -> None:
        self.closing = True
        self.wake.set()


class DebugHub:
    def __init__(
        self,
        bus: Bus,
        *,
        queue_max_events: int = QUEUE_MAX_EVENTS,
        streams_per_partner: int = STREAMS_PER_PARTNER,
        streams_per_process: int = STREAMS_PER_PROCESS,
        heartbeat_s: float = 15.0,
    ) -> None:
        self._bus = bus
        self._queue_max = queue_max_events
        self._per_partner = streams_per_partner
        self._per_process = streams_per_process
        self.heartbeat_s = heartbeat_s
        # The request path's flag: some stream, on some process, watches some partner.
        self.active = False
        self._leases: dict[str, float] = {}
        self._local: defaultdict[str, list[Subscription]] = defaultdict(list)
        self._task: asyncio.Task[None] | None = None
        self._closed = False

    # -- the request path ----------------------------------------------------------------------

    def begin(self) -> tuple[Capture, object]:
        """Start noting a request (only called while `active`)."""
        capture = Capture()
        return capture, captures.current.set(capture)

    def finish(
        self,
        began: tuple[Capture, object],
        scope: Mapping[str, Any],
        route: str,
        request_id: str,
        status: int,
        outcome: Outcome,
        error: IngestError | None,
    ) -> None:
        """Publish the request's event if a stream watches its partner."""
        capture = self.forget(began)
        partner_id = capture.partner_id or (error.partner_id if error else None)
        if partner_id is None or not self.wants(partner_id):
            return
        event = request_event(
            received_at=datetime.now(UTC),
            route=route,
            method=scope.get("method", ""),
            path=scope.get("path", ""),
            request_id=request_id,
            status=status,
            outcome=outcome,
            error=error,
            capture=capture,
        )
        try:
            payload = encode_event(event)
        except (TypeError, ValueError, msgspec.EncodeError):
            # The debugger never fails a request: a row it cannot show is logged, not raised.
            log.warning("debug event not encodable", exc_info=True)
            return
        self._bus.send(_EVENT + partner_id.encode() + b" " + payload)

    @staticmethod
    def forget(began: tuple[Capture, object]) -> Capture:
        """Stop noting the request (the context variable back as it was)."""
        capture, token = began
        captures.current.reset(token)  # type: ignore[arg-type]
        return capture

    def wants(self, partner_id: str) -> bool:
        leases = self._leases
        return ALL in leases or partner_id in leases

    # -- streams -------------------------------------------------------------------------------

    def subscribe(self, partner_id: str | None) -> Subscription:
        """A stream of `partner_id`'s requests (every partner's for None); RateLimited past a
        cap, Unavailable once the server is stopping."""
        if self._closed:
            raise Unavailable("the server is shutting down; open the stream again")
        subscription = Subscription(partner_id, self._queue_max)
        if len(self._local.get(subscription.watches, ())) >= self._per_partner:
            raise RateLimited(
                f"at most {self._per_partner} debug streams per partner on one server process",
                retry_after_s=5, limit=self._per_partner,
            )  # fmt: skip
        if sum(len(subs) for subs in self._local.values()) >= self._per_process:
            raise RateLimited(
                f"at most {self._per_process} debug streams on one server process",
                retry_after_s=5, limit=self._per_process,
            )  # fmt: skip
        self._local[subscription.watches].append(subscription)
        self._announce()
        return subscription

    def unsubscribe(self, subscription: Subscription) -> None:
        subs = self._local.get(subscription.watches, [])
        if subscription in subs:
            subs.remove(subscription)
        if not subs:
            self._local.pop(subscription.watches, None)

    # -- the bus -------------------------------------------------------------------------------

    async def start(self) -> None:
        await self._bus.start(self._heard, self._lease)
        self._task = asyncio.create_task(self._keep_leases(), name="debug-leases")

    def shut_down(self) -> None:
        """End every stream now (the server is stopping; their connections must not hold it)."""
        self._closed = True
        for subs in self._local.values():
            for subscription in subs:
                subscription.close()

    async def close(self) -> None:
        self.shut_down()
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        await self._bus.close()

    def _lease(self) -> bytes | None:
        return _LEASE + msgspec.json.encode(sorted(self._local)) if self._local else None

    def _announce(self) -> None:
        if lease := self._lease():
            self._bus.send(lease)

    async def _keep_leases(self) -> None:
        # Announcing and expiring never wait on the bus's round: a round that fails or takes
        # long must not let the leases this process gives, or keeps, lapse.
        while True:
            self._announce()
            self._expire(time.monotonic())
            try:
                await self._bus.tick()
            except Exception:
                log.exception("debug stream: finding the other processes failed; retrying")
            await asyncio.sleep(LEASE_EVERY_S)

    def _expire(self, now: float) -> None:
        for watched, until in list(self._leases.items()):
            if until < now:
                log.debug("debug stream: lease of %s expired", watched)
                del self._leases[watched]
        self.active = bool(self._leases)

    def _heard(self, frame: bytes) -> None:
        kind, rest = frame[:1], frame[1:]
        if kind == _EVENT:
            partner, _, payload = rest.partition(b" ")
            for watches in (partner.decode(errors="replace"), ALL):
                for subscription in self._local.get(watches, ()):
                    subscription.offer(payload)
        elif kind == _LEASE:
            try:
                watched: Sequence[str] = msgspec.json.decode(rest, type=list[str])
            except msgspec.DecodeError:
                return
            until = time.monotonic() + LEASE_TTL_S
            for watcher in watched:
                self._leases[watcher] = until
                for subscription in self._local.get(watcher, ()):
                    subscription.ready.set()
            self.active = bool(self._leases)
        elif kind == _JOIN:
            self._announce()
