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

from limits import RateLimitItem, RateLimitItemPerSecond
from limits.aio.storage import RedisStorage, Storage
from limits.aio.strategies import SlidingWindowCounterRateLimiter

from thrad_events.errors import RateLimited
from thrad_events.store.records import ApiKeyRecord

log = logging.getLogger(__name__)


class LocalCounters:
    """This process's counters: the same sliding-window count as `limits`' strategy, in a dict.

    `limits`' memory storage makes a hit several calls, a string key per window and a lock
    (BENCHMARKS.md has its share of a collect); one event loop needs none of that. A per-second
    window is `[second, count, previous second's count]`; like `limits`, the previous second
    weighs by the part of it still inside the last second, and a hit is admitted while the
    weighted count plus one stays within the limit. Daily caps are fixed windows that expire a
    day after their first hit, under a name that carries the date. Counters nobody reads any
    more are swept on a hit, at most once per SWEEP_EVERY_S.
    """

    SWEEP_EVERY_S = 1.0
    DAY_S = 86_400.0

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self.windows: dict[str, list[int]] = {}
        # name -> [count, when it expires]
        self.days: dict[str, list[float]] = {}
        self.next_sweep = 0.0

    def hit(self, name: str, per_s: int) -> tuple[bool, int]:
        """Count one request of `name` if it is within `per_s` per second; whether it was, and
        how many more the window would still admit."""
        now = self._clock()
        if now >= self.next_sweep:
            self._sweep(now)
        second = int(now)
        window = self.windows.get(name)
        if window is None:
            window = self.windows[name] = [second, 0, 0]
        elif window[0] != second:
            window[2] = window[1] if window[0] == second - 1 else 0
            window[0], window[1] = second, 0
        weighted = math.floor(window[2] * (second + 1 - now) + window[1])
        if weighted + 1 > per_s:
            return False, max(0, per_s - weighted)
        window[1] += 1
        return True, per_s - weighted - 1

    def hit_day(self, name: str, cap: int) -> bool:
        """Count one request against `name`'s cap (a name per day); whether it was within."""
        now = self._clock()
        if now >= self.next_sweep:
            self._sweep(now)
        day = self.days.get(name)
        if day is None or day[1] <= now:
            day = self.days[name] = [0, now + self.DAY_S]
        if day[0] + 1 > cap:
            return False
        day[0] += 1
        return True

    def _sweep(self, now: float) -> None:
        self.next_sweep = now + self.SWEEP_EVERY_S
        # A window two seconds old weighs nothing any more, as previous or as current.
        stale = int(now) - 1
        for name in [name for name, window in self.windows.items() if window[0] < stale]:
            del self.windows[name]
        for name in [name for name, day in self.days.items() if day[1] <= now]:
            del self.days[name]


def limiter_storage(redis_url: str | None) -> Storage | LocalCounters:
    """Redis when configured (async: a network round trip); else this process's counters,
    counted without a coroutine per request."""
    if not redis_url:
        return LocalCounters()
    uri = redis_url if redis_url.startswith("async+") else f"async+{redis_url}"
    return RedisStorage(uri, implementation="redispy", key_prefix="thrad", wrap_exceptions=True)


class KeyRateLimiter:
    def __init__(
        self,
        counters: Storage | LocalCounters,
        *,
        default_per_s: int,
        on_storage_failure: Callable[[], None] = lambda: None,
    ) -> None:
        # Exactly one of the two: this process's counters, or the shared (Redis) ones.
        self._local: LocalCounters | None = None
        self._shared: SlidingWindowCounterRateLimiter | None = None
        # Daily caps count whole UTC days: one counter under a name that carries the date, and
        # not the cap (as `limits`' keys do), so that a cap changed during the day applies to
        # what that day has already admitted.
        self._shared_days: Storage | None = None
        if isinstance(counters, LocalCounters):
            self._local = counters
        else:
            self._shared = SlidingWindowCounterRateLimiter(counters)
            self._shared_days = counters
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
        if self._local is not None:
            allowed, remaining = self._local.hit(name, per_s)
            if allowed:
                return
            # A one-second window always frees room within the second (`limits` says 1 too).
            raise self._refused(per_s, 1, remaining)
        assert self._shared is not None
        item = self._item(per_s)
        try:
            allowed = await self._shared.hit(item, name)
            if allowed:
                self._failing = False
                return
            stats = await self._shared.get_window_stats(item, name)
        except Exception as exc:
            self._storage_failed(exc)
            return
        reset_s = max(1, math.ceil(stats.reset_time - time.time()))
        raise self._refused(per_s, reset_s, stats.remaining)

    async def check_daily(self, name: str, cap: int, now: datetime | None = None) -> None:
        """Count one request against `name`'s cap for the current UTC day; past it, RateLimited
        until the next UTC midnight."""
        now = now or datetime.now(UTC)
        day = f"{name}:{now:%Y-%m-%d}"
        if self._local is not None:
            allowed = self._local.hit_day(day, cap)
        else:
            assert self._shared_days is not None
            try:
                allowed = await self._shared_days.incr(day, int(LocalCounters.DAY_S)) <= cap
                if not allowed:
                    # Only admitted requests count, as in LocalCounters: a cap raised later
                    # admits the difference.
                    await self._shared_days.incr(day, int(LocalCounters.DAY_S), amount=-1)
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
    def _refused(per_s: int, reset_s: int, remaining: int) -> RateLimited:
        return RateLimited(
            f"rate limit of {per_s} requests per second exceeded",
            retry_after_s=reset_s,
            limit=per_s,
            remaining=max(0, remaining),
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
