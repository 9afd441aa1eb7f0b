"""Per-key rate limits: N requests per second sustained, shared through Redis when configured.

Without THRAD_REDIS_URL each process counts on its own (so N workers admit up to N times the
limit); with it every process and node shares one counter per key. When Redis stops answering
we fail open on purpose: dropping a partner's events because a counter is unreachable is worse
than briefly admitting too many. The failure is logged once and counted
(thrad_rate_limit_storage_failures_total).
"""

from __future__ import annotations

import asyncio
import logging
import math
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta

from limits import RateLimitItem, RateLimitItemPerDay, RateLimitItemPerSecond, storage, strategies
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import FixedWindowRateLimiter, SlidingWindowCounterRateLimiter
from limits.util import WindowStats

from thrad_events.errors import RateLimited
from thrad_events.store.records import ApiKeyRecord

log = logging.getLogger(__name__)


class MemoryCounters(storage.MemoryStorage):
    """`limits`' in-memory storage without its timer threads.

    Upstream frees expired counters on a `threading.Timer` of 10 ms and starts a new one on the
    next hit once the last has run, so under load a worker started ~100 threads a second, each
    taking the GIL from the event loop (BENCHMARKS.md has the CPU per collect with and without
    them). Reading a counter already drops it once expired
    (`get`), so the sweep only frees the keys nobody reads any more: it runs here on the hit
    itself, at most once per SWEEP_EVERY_S.
    """

    SWEEP_EVERY_S = 1.0

    def __init__(self) -> None:
        super().__init__()
        self._next_sweep = 0.0

    # Overrides the name-mangled hook every write of MemoryStorage calls (limits==5.8.0).
    def _MemoryStorage__schedule_expiry(self) -> None:
        now = time.monotonic()
        if now >= self._next_sweep:
            self._next_sweep = now + self.SWEEP_EVERY_S
            self._MemoryStorage__expire_events()  # type: ignore[attr-defined]


def limiter_storage(redis_url: str | None) -> Storage | storage.MemoryStorage:
    """Redis when configured (async: a network round trip); else this process's memory, where
    the synchronous API does the same sliding-window count without a coroutine per request."""
    if not redis_url:
        return MemoryCounters()
    uri = redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
    return RedisStorage(uri, implementation="redispy", key_prefix="thrad", wrap_exceptions=True)


class KeyRateLimiter:
    def __init__(
        self,
        counters: Storage | storage.MemoryStorage,
        *,
        default_per_s: int,
        on_storage_failure: Callable[[], None] = lambda: None,
    ) -> None:
        # Exactly one of the two: this process's counters, or the shared (Redis) ones.
        self._local: strategies.SlidingWindowCounterRateLimiter | None = None
        self._shared: SlidingWindowCounterRateLimiter | None = None
        # Daily caps count whole UTC days: a fixed window under a name that carries the date.
        self._local_days: strategies.FixedWindowRateLimiter | None = None
        self._shared_days: FixedWindowRateLimiter | None = None
        if isinstance(counters, storage.MemoryStorage):
            self._local = strategies.SlidingWindowCounterRateLimiter(counters)
            self._local_days = strategies.FixedWindowRateLimiter(counters)
        else:
            self._shared = SlidingWindowCounterRateLimiter(counters)
            self._shared_days = FixedWindowRateLimiter(counters)
        self._default = default_per_s
        self._items: dict[int, RateLimitItem] = {}
        self._failing = False
        self._on_storage_failure = on_storage_failure

    def _item(self, per_s: int) -> RateLimitItem:
        item = self._items.get(per_s)
        if item is None:
            item = self._items[per_s] = RateLimitItemPerSecond(per_s)
        return item

    async def check(self, key: ApiKeyRecord) -> None:
        """Count one request of `key`; RateLimited when it is over its limit."""
        await self.check_name(key.key_id, key.rate_limit or self._default)

    async def check_name(self, name: str, per_s: int) -> None:
        """Count one request of whatever `name` stands for (a key id, `tag:<id>`,
        `tag-ip:<address>`); RateLimited when it is over `per_s` requests per second."""
        item = self._item(per_s)
        if self._local is not None:
            if self._local.hit(item, name):
                return
            stats = self._local.get_window_stats(item, name)
            raise self._refusal(per_s, stats)
        assert self._shared is not None
        try:
            allowed = await self._shared.hit(item, name)
            if allowed:
                self._failing = False
                return
            stats = await self._shared.get_window_stats(item, name)
        except Exception as exc:
            self._storage_failed(exc)
            return
        raise self._refusal(per_s, stats)

    async def check_daily(self, name: str, cap: int, now: datetime | None = None) -> None:
        """Count one request against `name`'s cap for the current UTC day; past it, RateLimited
        until the next UTC midnight."""
        now = now or datetime.now(UTC)
        day = f"{name}:{now:%Y-%m-%d}"
        item = RateLimitItemPerDay(cap)
        if self._local_days is not None:
            allowed = self._local_days.hit(item, day)
        else:
            assert self._shared_days is not None
            try:
                allowed = await self._shared_days.hit(item, day)
            except Exception as exc:
                self._storage_failed(exc)
                return
        if allowed:
            return
        midnight = datetime.combine(now.date() + timedelta(days=1), datetime.min.time(), UTC)
        raise RateLimited(
            f"daily cap of {cap} requests reached; it resets at 00:00 UTC",
            retry_after_s=max(1, math.ceil((midnight - now).total_seconds())),
            limit=cap,
        )

    def _storage_failed(self, exc: Exception) -> None:
        self._on_storage_failure()
        if not self._failing:
            log.warning("rate-limit storage unreachable, admitting requests: %s", exc)
            self._failing = True

    @staticmethod
    def _refusal(per_s: int, stats: WindowStats) -> RateLimited:
        reset_s = max(1, math.ceil(stats.reset_time - time.time()))
        return RateLimited(
            f"rate limit of {per_s} requests per second exceeded",
            retry_after_s=reset_s,
            limit=per_s,
            remaining=max(0, stats.remaining),
        )

    async def ping(self, timeout_s: float = 1.0) -> bool:
        """True when the counters answer within `timeout_s` (always, for this process's own)."""
        if self._shared is None:
            return True
        try:
            async with asyncio.timeout(timeout_s):
                return bool(await self._shared.storage.check())
        except Exception:
            return False
