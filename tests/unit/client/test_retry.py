"""client/retry.py: which failures are retried, how long the waits are, when a call stops."""

from __future__ import annotations

import httpx
import pytest

from tests.unit.client.conftest import FakeTime
from thrad_events.client.retry import (
    Attempts,
    RetryPolicy,
    should_retry_exception,
    should_retry_status,
)


@pytest.mark.parametrize("status", [429, 500, 502, 503, 504, 599])
def test_seed_retry_guidance_429_and_5xx_are_retried(status: int) -> None:
    assert should_retry_status(status)


def test_a_408_is_retried_nothing_of_a_body_sent_too_slowly_was_processed() -> None:
    assert should_retry_status(408)


@pytest.mark.parametrize("status", [400, 401, 403, 404, 405, 409, 413, 415, 422])
def test_client_errors_are_never_retried(status: int) -> None:
    assert not should_retry_status(status)


@pytest.mark.parametrize(
    "exc",
    [
        httpx.ConnectError("refused"),
        httpx.ReadError("reset"),
        httpx.WriteError("broken pipe"),
        httpx.ConnectTimeout("slow"),
        httpx.ReadTimeout("slow"),
        httpx.PoolTimeout("busy"),
        httpx.RemoteProtocolError("Server disconnected without sending a response."),
    ],
)
def test_seed_retry_guidance_network_errors_are_retried(exc: Exception) -> None:
    assert should_retry_exception(exc)


@pytest.mark.parametrize(
    "exc", [httpx.UnsupportedProtocol("ftp://"), httpx.LocalProtocolError("bad header")]
)
def test_local_mistakes_are_not_retried(exc: Exception) -> None:
    assert not should_retry_exception(exc)


def test_backoff_cap_doubles_from_the_initial_wait_up_to_the_maximum() -> None:
    policy = RetryPolicy(initial_backoff_s=0.5, max_backoff_s=4.0)
    assert [policy.backoff_cap_s(n) for n in range(1, 7)] == [0.5, 1.0, 2.0, 4.0, 4.0, 4.0]
    assert policy.backoff_cap_s(10_000) == 4.0


@pytest.mark.parametrize("draw", [0.0, 0.25, 0.999999])
def test_full_jitter_draws_the_wait_between_zero_and_the_cap(draw: float) -> None:
    time = FakeTime()
    attempts = Attempts(RetryPolicy(max_attempts=10, deadline_s=None), time.clock, lambda: draw)
    for n in range(1, 6):
        attempts.begin()
        delay = attempts.delay_before_next()
        assert delay == pytest.approx(draw * min(8.0, 0.5 * 2 ** (n - 1)))


def test_retry_after_is_waited_exactly_instead_of_the_backoff() -> None:
    attempts = Attempts(RetryPolicy(), FakeTime().clock, lambda: 0.9)
    attempts.begin()
    assert attempts.delay_before_next(retry_after_s=3.0) == 3.0


def test_no_wait_is_offered_after_the_last_attempt() -> None:
    attempts = Attempts(RetryPolicy(max_attempts=2), FakeTime().clock, lambda: 0.5)
    attempts.begin()
    assert attempts.delay_before_next() is not None
    attempts.begin()
    assert attempts.delay_before_next() is None


def test_a_wait_that_would_end_after_the_deadline_stops_the_call_now() -> None:
    time = FakeTime()
    attempts = Attempts(RetryPolicy(deadline_s=5.0), time.clock, lambda: 0.5)
    attempts.begin()
    assert attempts.delay_before_next(retry_after_s=4.9) == 4.9
    assert attempts.delay_before_next(retry_after_s=5.0) is None
    time.now += 4.0
    assert attempts.remaining_s() == pytest.approx(1.0)
    assert attempts.delay_before_next(retry_after_s=1.5) is None


@pytest.mark.parametrize(
    "options",
    [{"max_attempts": 0}, {"deadline_s": 0}, {"initial_backoff_s": -1}, {"max_backoff_s": -1}],
)
def test_nonsense_policies_are_refused(options: dict[str, float]) -> None:
    with pytest.raises(ValueError, match="must"):
        RetryPolicy(**options)  # type: ignore[arg-type]
