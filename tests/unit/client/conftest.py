"""Scripted transports and a fake clock: the SDK's retries tested without a network or real time."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import Any

import httpx
import pytest

from thrad_events.client import AsyncThrad, Thrad

Step = httpx.Response | Exception | Callable[[httpx.Request], httpx.Response]


def error_response(
    status: int, code: str, message: str = "no", headers: dict[str, str] | None = None, **extra: Any
) -> httpx.Response:
    body = {"error": {"code": code, "message": message, "details": extra.get("details", [])}}
    return httpx.Response(status, json=body, headers=headers)


@dataclass
class FakeTime:
    """A monotonic clock that only moves when the client sleeps or a test advances it."""

    now: float = 1000.0
    sleeps: list[float] = field(default_factory=list)

    def clock(self) -> float:
        return self.now

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    async def async_sleep(self, seconds: float) -> None:
        self.sleep(seconds)


class Script:
    """A MockTransport handler answering each request with the next step; the last one repeats.

    A step is a response, an exception to raise (a network failure), or a function of the request.
    """

    def __init__(self, *steps: Step) -> None:
        self.steps = list(steps)
        self.requests: list[httpx.Request] = []

    def __call__(self, request: httpx.Request) -> httpx.Response:
        self.requests.append(request)
        step = self.steps[min(len(self.requests), len(self.steps)) - 1]
        if isinstance(step, Exception):
            raise step
        if isinstance(step, httpx.Response):
            return step
        return step(request)

    @property
    def attempts(self) -> int:
        return len(self.requests)

    def bodies(self) -> list[Any]:
        return [json.loads(request.content) for request in self.requests]

    def header(self, name: str) -> list[str | None]:
        return [request.headers.get(name) for request in self.requests]


@pytest.fixture
def fake_time() -> FakeTime:
    return FakeTime()


@pytest.fixture
def make_client(fake_time: FakeTime) -> Iterator[Callable[..., Thrad]]:
    """Build a Thrad on a Script, fake time and a fixed jitter; every one is closed after."""
    made: list[Thrad] = []

    def make(script: Script, **options: Any) -> Thrad:
        options.setdefault("jitter", lambda: 0.5)
        client = Thrad(
            api_key="test-key",
            base_url="https://events.example",
            transport=httpx.MockTransport(script),
            clock=fake_time.clock,
            sleep=fake_time.sleep,
            **options,
        )
        made.append(client)
        return client

    yield make
    for client in made:
        client.close()


@pytest.fixture
def make_async_client(fake_time: FakeTime) -> Callable[..., AsyncThrad]:
    """An AsyncThrad on a Script; the test closes it inside its event loop."""

    def make(script: Script, **options: Any) -> AsyncThrad:
        options.setdefault("jitter", lambda: 0.5)
        return AsyncThrad(
            api_key="test-key",
            base_url="https://events.example",
            transport=httpx.MockTransport(script),
            clock=fake_time.clock,
            sleep=fake_time.async_sleep,
            **options,
        )

    return make
