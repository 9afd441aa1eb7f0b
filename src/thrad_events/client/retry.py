"""When to retry a request and how long to wait first: the seeds' Retry Guidance, sans I/O.

Retried: no answer at all (connect, read or write failure, timeout), 429 and any 5xx, and 408,
the server's own word that the body arrived too slowly (a network failure seen from its side:
nothing was processed). Never retried: every other answer, in particular 400, 401, 404, 413 and
422, which would fail the same way again. The wait before retry n (1-based) is drawn uniformly from
[0, min(max_backoff_s, initial_backoff_s * 2 ** (n - 1))] ("full jitter"), unless the server sent
Retry-After, which is then waited exactly. A logical call stops after `max_attempts` attempts or
when the next attempt could not start before its total deadline, and raises the last error.

The sync and async clients share this module; only their sleep differs.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass

import httpx

Clock = Callable[[], float]
"""Monotonic seconds, e.g. time.monotonic; injectable so tests need no real time."""

Jitter = Callable[[], float]
"""A uniform draw in [0, 1), e.g. random.random."""

RETRYABLE_STATUSES = frozenset({408, 429}) | frozenset(range(500, 600))

# Failures where the request may never have reached the server, or its answer was lost: a
# retry is the only way to know. Local mistakes (a bad URL scheme, an invalid header) are not.
_RETRYABLE_TRANSPORT_ERRORS = (
    httpx.TimeoutException,
    httpx.NetworkError,
    httpx.RemoteProtocolError,
    httpx.ProxyError,
)


def should_retry_status(status: int) -> bool:
    """408, 429 and 5xx are worth another attempt; any other answer would be the same again."""
    return status in RETRYABLE_STATUSES


def should_retry_exception(exc: BaseException) -> bool:
    return isinstance(exc, _RETRYABLE_TRANSPORT_ERRORS)


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """How hard one logical call tries: attempts, total deadline, backoff bounds."""

    max_attempts: int = 4
    # Seconds from the first attempt within which every attempt must start; None = no deadline.
    deadline_s: float | None = 30.0
    initial_backoff_s: float = 0.5
    max_backoff_s: float = 8.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if self.deadline_s is not None and self.deadline_s <= 0:
            raise ValueError("deadline_s must be positive (or None for no deadline)")
        if self.initial_backoff_s < 0 or self.max_backoff_s < 0:
            raise ValueError("backoff bounds must not be negative")

    def backoff_cap_s(self, retry_number: int) -> float:
        """The upper bound of the wait before retry `retry_number` (1-based)."""
        exponent = min(retry_number - 1, 62)  # 2 ** 62 already dwarfs any sane cap
        return float(min(self.max_backoff_s, self.initial_backoff_s * 2**exponent))


class Attempts:
    """One logical call's retry budget: counts attempts and says how long to wait, or to stop."""

    def __init__(self, policy: RetryPolicy, clock: Clock, jitter: Jitter = random.random) -> None:
        self._policy = policy
        self._clock = clock
        self._jitter = jitter
        self._started = clock()
        self.count = 0

    def begin(self) -> None:
        self.count += 1

    def remaining_s(self) -> float | None:
        """Seconds left before the deadline; None without one."""
        if self._policy.deadline_s is None:
            return None
        return self._started + self._policy.deadline_s - self._clock()

    def delay_before_next(self, retry_after_s: float | None = None) -> float | None:
        """Seconds to wait before the next attempt, or None when there is to be none."""
        if self.count >= self._policy.max_attempts:
            return None
        if retry_after_s is not None:
            delay = retry_after_s
        else:
            delay = self._jitter() * self._policy.backoff_cap_s(self.count)
        remaining = self.remaining_s()
        if remaining is not None and delay >= remaining:
            return None  # the next attempt could not start in time: fail now, not later
        return delay
