"""The in-process rate limit: `limits`' sliding window count in a dict, no thread, no lock."""

from __future__ import annotations

import asyncio
import logging
import random
import socket
import threading
import time
from datetime import UTC, datetime, timedelta

import pytest
from limits import RateLimitItemPerSecond, storage, strategies

from tests.unit.keys import api_key
from thrad_events.errors import RateLimited
from thrad_events.ratelimits import KeyRateLimiter, LocalCounters, limiter_storage
from thrad_events.store.records import ApiKeyRecord


async def _admitted(limiter: KeyRateLimiter, key: ApiKeyRecord, hits: int) -> int:
    admitted = 0
    for _ in range(hits):
        try:
            await limiter.check(key)
        except RateLimited:
            continue
        admitted += 1
    return admitted


def _unreachable_shared_counters(failures: list[None]) -> KeyRateLimiter:
    """A limiter on Redis at a port nobody listens on, each storage failure noted."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return KeyRateLimiter(
        limiter_storage(f"redis://127.0.0.1:{port}/0"),
        default_per_s=1,
        on_storage_failure=lambda: failures.append(None),
    )


def test_a_key_gets_its_limit_then_a_refusal_with_retry_after() -> None:
    limiter = KeyRateLimiter(LocalCounters(), default_per_s=100)
    key = api_key(rate_limit=5)
    assert asyncio.run(_admitted(limiter, key, 5)) == 5
    with pytest.raises(RateLimited) as refused:
        asyncio.run(limiter.check(key))
    assert refused.value.limit == 5
    assert refused.value.remaining == 0
    assert 1 <= refused.value.retry_after_s <= 2
    # Another key has its own window; a key without a limit of its own gets the default.
    assert asyncio.run(_admitted(limiter, api_key("key_b"), 120)) == 100


def test_hits_start_no_threads(monkeypatch: pytest.MonkeyPatch) -> None:
    counters = LocalCounters()
    started: list[threading.Timer] = []
    real_start = threading.Timer.start

    def counting_start(timer: threading.Timer) -> None:
        started.append(timer)
        real_start(timer)

    monkeypatch.setattr(threading.Timer, "start", counting_start)
    limiter = KeyRateLimiter(counters, default_per_s=10**6)
    began = time.monotonic()
    while time.monotonic() - began < 0.1:  # ten of upstream's 10 ms timer periods
        asyncio.run(_admitted(limiter, api_key(), 50))
    assert started == []


def test_the_sweep_frees_expired_counters_at_most_once_a_second() -> None:
    now = [1000.25]
    counters = LocalCounters(clock=lambda: now[0])
    limiter = KeyRateLimiter(counters, default_per_s=100)
    asyncio.run(limiter.check(api_key("key_old")))
    asyncio.run(limiter.check_daily("tag-day:old", 5, datetime(2026, 2, 19, 12, tzinfo=UTC)))
    day = "tag-day:old:2026-02-19"
    assert "key_old" in counters.windows
    assert day in counters.days
    # Two seconds on, the old window weighs nothing; a day on, the old cap has expired. Swept
    # on a hit of another key only once the last sweep is a second old.
    now[0] += LocalCounters.DAY_S
    counters.next_sweep = now[0] + 0.5
    asyncio.run(limiter.check(api_key("key_new")))
    assert "key_old" in counters.windows
    assert day in counters.days
    counters.next_sweep = 0.0
    asyncio.run(limiter.check(api_key("key_new")))
    assert "key_old" not in counters.windows
    assert day not in counters.days
    assert "key_new" in counters.windows
    # A window of the last second still weighs on the current one: it is kept.
    now[0] += 1.0
    counters.next_sweep = 0.0
    asyncio.run(limiter.check(api_key("key_other")))
    assert "key_new" in counters.windows


class _NoTimers(storage.MemoryStorage):
    def _MemoryStorage__schedule_expiry(self) -> None:
        pass


@pytest.mark.parametrize("seed", range(5))
def test_local_counters_admit_and_refuse_exactly_as_limits_sliding_window(
    seed: int, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The same clock through both: every hit admitted or refused alike, the same remaining."""
    rng = random.Random(seed)
    now = [1_000_000.0]

    class Clock:
        @staticmethod
        def time() -> float:
            return now[0]

    monkeypatch.setattr(storage.memory, "time", Clock)
    monkeypatch.setattr(strategies, "time", Clock)
    reference = strategies.SlidingWindowCounterRateLimiter(_NoTimers())
    local = LocalCounters(clock=Clock.time)
    per_s = rng.choice((1, 3, 7, 20))
    item = RateLimitItemPerSecond(per_s)
    refused = 0
    for _ in range(3000):
        # Steps of 1/256 s (exact in binary, so both sides round alike), now and then a pause.
        now[0] += rng.choice((rng.randint(0, 12),) * 9 + (rng.randint(200, 700),)) / 256
        for name in rng.sample(("a", "b"), rng.randint(1, 2)):
            expected = reference.hit(item, name)
            allowed, remaining = local.hit(name, per_s)
            assert allowed == expected, (now[0], name)
            if not allowed:
                refused += 1
                assert remaining == reference.get_window_stats(item, name).remaining
    assert refused > 100


def test_unreachable_shared_counters_admit_the_request_and_count_each_failure(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Redis down: fail open on purpose, log once, and count every admitted check."""
    failures: list[None] = []
    limiter = _unreachable_shared_counters(failures)

    async def three_checks() -> None:
        for _ in range(3):
            await limiter.check(api_key())  # over the limit of 1, yet admitted

    with caplog.at_level(logging.WARNING, logger="thrad_events.ratelimits"):
        asyncio.run(three_checks())
    assert len(failures) == 3
    assert len(caplog.records) == 1


def test_a_daily_cap_holds_for_the_utc_day_and_says_when_it_resets() -> None:
    """The browser Tag's daily cap: past it, refused until the next 00:00 UTC."""
    limiter = KeyRateLimiter(LocalCounters(), default_per_s=100)
    evening = datetime(2026, 2, 19, 23, 59, 0, tzinfo=UTC)

    async def capped(now: datetime) -> None:
        await limiter.check_daily("tag-day:adv_001", 2, now)

    asyncio.run(capped(evening))
    asyncio.run(capped(evening))
    with pytest.raises(RateLimited) as refused:
        asyncio.run(capped(evening + timedelta(seconds=30)))
    assert refused.value.limit == 2
    assert refused.value.retry_after_s == 30
    # Another name has its own cap, and a new UTC day a new count.
    asyncio.run(limiter.check_daily("tag-day:adv_002", 2, evening))
    asyncio.run(capped(evening + timedelta(minutes=1)))


def test_unreachable_shared_counters_admit_a_capped_request_too() -> None:
    failures: list[None] = []
    limiter = _unreachable_shared_counters(failures)

    async def over_the_cap() -> None:
        for _ in range(3):
            await limiter.check_daily("tag-day:adv_001", 1)

    asyncio.run(over_the_cap())
    assert len(failures) == 3
