"""client/sender.py: the background sender batches, flushes by size, time and close, and counts."""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.unit.client.conftest import error_response
from thrad_events.client import (
    APIConnectionError,
    BackgroundSender,
    EventDroppedError,
    Thrad,
    ThradError,
    ValidationError,
)

WAIT_S = 5.0  # an upper bound for a thread to act; the tests take milliseconds


class Server:
    """A thread-safe MockTransport handler that records each request's events."""

    def __init__(self, answer: Callable[[httpx.Request, list[dict[str, Any]]], httpx.Response]):
        self.answer = answer
        self.lock = threading.Lock()
        self.requests: list[tuple[str, list[dict[str, Any]]]] = []
        self.arrived = threading.Event()

    def __call__(self, request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        events = body["events"] if request.url.path.endswith("/batch") else [body]
        with self.lock:
            self.requests.append((request.url.path, events))
        self.arrived.set()
        return self.answer(request, events)

    def events(self) -> list[dict[str, Any]]:
        with self.lock:
            return [event for _, events in self.requests for event in events]

    def paths(self) -> list[str]:
        with self.lock:
            return [path for path, _ in self.requests]


def accept_all(request: httpx.Request, events: list[dict[str, Any]]) -> httpx.Response:
    if not request.url.path.endswith("/batch"):
        return httpx.Response(204)
    results = [{"index": i, "status": "ok"} for i in range(len(events))]
    totals = {"ok": len(events), "duplicate": 0, "error": 0}
    return httpx.Response(200, json={"results": results, "totals": totals})


Errors = list[tuple[ThradError, list[dict[str, Any]]]]


@pytest.fixture
def errors() -> Errors:
    return []


@pytest.fixture
def make_sender(errors: Errors) -> Iterator[Callable[..., BackgroundSender]]:
    made: list[tuple[BackgroundSender, Thrad]] = []

    def make(server: Server, *, max_attempts: int = 3, **options: Any) -> BackgroundSender:
        client = Thrad(
            api_key="k",
            base_url="https://events.example",
            transport=httpx.MockTransport(server),
            max_attempts=max_attempts,
            sleep=lambda seconds: None,
        )
        options.setdefault("flush_interval_s", 60.0)
        sender = BackgroundSender(
            client, on_error=lambda error, events: errors.append((error, events)), **options
        )
        made.append((sender, client))
        return sender

    yield make
    for sender, client in made:
        sender.close()
        client.close()


def test_a_full_batch_is_sent_at_once_through_the_batch_endpoint(
    make_sender: Callable[..., BackgroundSender],
) -> None:
    server = Server(accept_all)
    sender = make_sender(server, flush_at=5)
    for i in range(5):
        assert sender.collect("page_view", event_id=f"e{i}")
    assert server.arrived.wait(WAIT_S)
    assert sender.flush(WAIT_S)
    assert server.paths() == ["/v1/api/collect/batch"]
    assert [event["event_id"] for event in server.events()] == [f"e{i}" for i in range(5)]
    assert sender.stats.sent == 5


def test_a_partial_batch_is_sent_when_the_interval_passes(
    make_sender: Callable[..., BackgroundSender],
) -> None:
    server = Server(accept_all)
    sender = make_sender(server, flush_at=100, flush_interval_s=0.05)
    started = time.monotonic()
    sender.collect("page_view", event_id="a")
    sender.collect("page_view", event_id="b")
    assert server.arrived.wait(WAIT_S)
    assert time.monotonic() - started >= 0.05
    assert [event["event_id"] for event in server.events()] == ["a", "b"]


def test_close_sends_everything_queued_and_stops(
    make_sender: Callable[..., BackgroundSender], errors: Errors
) -> None:
    server = Server(accept_all)
    sender = make_sender(server, flush_at=100)
    for i in range(7):
        sender.collect("page_view", event_id=f"e{i}")
    assert server.requests == []  # neither size nor interval reached yet
    sender.close()
    assert len(server.events()) == 7
    assert sender.stats.sent == 7
    assert sender.stats.queued == 0
    assert errors == []


def test_flush_sends_now_and_waits_for_the_answer(
    make_sender: Callable[..., BackgroundSender],
) -> None:
    server = Server(accept_all)
    sender = make_sender(server, flush_at=100)
    sender.collect("page_view")
    sender.collect("signup_started")
    assert sender.flush(WAIT_S)
    assert [event["event_name"] for event in server.events()] == ["page_view", "signup_started"]
    assert sender.flush(WAIT_S)  # nothing queued: returns at once


def test_a_full_queue_drops_and_counts_and_never_blocks(
    make_sender: Callable[..., BackgroundSender], errors: Errors
) -> None:
    server = Server(accept_all)
    sender = make_sender(server, flush_at=100, max_queue_size=3)
    started = time.monotonic()
    accepted = [sender.collect("page_view", event_id=f"e{i}") for i in range(5)]
    assert time.monotonic() - started < 1.0
    assert accepted == [True, True, True, False, False]
    assert sender.stats.dropped == 2
    assert [(error.code, events[0]["event_id"]) for error, events in errors] == [
        ("queue_full", "e3"),
        ("queue_full", "e4"),
    ]
    assert all(isinstance(error, EventDroppedError) for error, _ in errors)
    sender.close()
    assert sender.stats.sent == 3


def test_a_server_without_the_batch_endpoint_gets_single_collects(
    make_sender: Callable[..., BackgroundSender],
) -> None:
    def old_server(request: httpx.Request, events: list[dict[str, Any]]) -> httpx.Response:
        if request.url.path.endswith("/batch"):
            return error_response(404, "not_found")
        return httpx.Response(204)

    server = Server(old_server)
    sender = make_sender(server, flush_at=3)
    for i in range(3):
        sender.collect("page_view", event_id=f"a{i}")
    assert sender.flush(WAIT_S)
    for i in range(3):
        sender.collect("page_view", event_id=f"b{i}")
    sender.close()
    assert server.paths() == ["/v1/api/collect/batch"] + ["/v1/api/collect"] * 6
    assert sender.stats.sent == 6
    assert sender.stats.dropped == 0


def test_items_the_server_refuses_are_dropped_and_reported_the_rest_sent(
    make_sender: Callable[..., BackgroundSender], errors: Errors
) -> None:
    def one_bad(request: httpx.Request, events: list[dict[str, Any]]) -> httpx.Response:
        results: list[dict[str, Any]] = [{"index": i, "status": "ok"} for i in range(len(events))]
        results[1] = {
            "index": 1,
            "status": "error",
            "error": {
                "code": "validation_error",
                "message": "timestamp: bad",
                "details": [{"field": "timestamp", "message": "bad"}],
            },
        }
        return httpx.Response(
            200, json={"results": results, "totals": {"ok": 2, "duplicate": 0, "error": 1}}
        )

    sender = make_sender(Server(one_bad), flush_at=3)
    sender.collect("a")
    sender.collect("b", timestamp="yesterday")
    sender.collect("c")
    sender.close()
    assert (sender.stats.sent, sender.stats.dropped) == (2, 1)
    [(error, events)] = errors
    assert isinstance(error, ValidationError)
    assert error.fields == ["timestamp"]
    assert events == [{"event_name": "b", "timestamp": "yesterday"}]


def test_retries_are_counted(make_sender: Callable[..., BackgroundSender]) -> None:
    attempts = iter([503, 200])

    def flaky(request: httpx.Request, events: list[dict[str, Any]]) -> httpx.Response:
        if next(attempts) == 503:
            return error_response(503, "unavailable")
        return accept_all(request, events)

    sender = make_sender(Server(flaky), flush_at=2)
    sender.collect("a", event_id="1")
    sender.collect("b", event_id="2")
    sender.close()
    assert sender.stats.retried == 1
    assert sender.stats.sent == 2


def test_when_the_server_stays_down_the_batch_is_dropped_and_reported(
    make_sender: Callable[..., BackgroundSender], errors: Errors
) -> None:
    def down(request: httpx.Request, events: list[dict[str, Any]]) -> httpx.Response:
        raise httpx.ConnectError("connection refused")

    server = Server(down)
    sender = make_sender(server, flush_at=2, max_attempts=3)
    sender.collect("a")
    sender.collect("b")
    sender.close()
    assert len(server.requests) == 3
    assert sender.stats.dropped == 2
    assert sender.stats.retried == 2
    [(error, events)] = errors
    assert isinstance(error, APIConnectionError)
    assert [event["event_name"] for event in events] == ["a", "b"]


def test_a_batch_too_large_for_the_server_is_split(
    make_sender: Callable[..., BackgroundSender],
) -> None:
    def small_bodies(request: httpx.Request, events: list[dict[str, Any]]) -> httpx.Response:
        if len(events) > 2:
            return error_response(413, "payload_too_large")
        return accept_all(request, events)

    server = Server(small_bodies)
    sender = make_sender(server, flush_at=5)
    for i in range(5):
        sender.collect("page_view", event_id=f"e{i}")
    sender.close()
    assert sender.stats.sent == 5
    stored = [
        event["event_id"] for _, events in server.requests if len(events) <= 2 for event in events
    ]
    assert sorted(stored) == [f"e{i}" for i in range(5)]


def test_close_that_runs_out_of_time_reports_what_it_could_not_send(
    make_sender: Callable[..., BackgroundSender], errors: Errors
) -> None:
    gate = threading.Event()

    def stuck(request: httpx.Request, events: list[dict[str, Any]]) -> httpx.Response:
        gate.wait(WAIT_S)
        return accept_all(request, events)

    server = Server(stuck)
    sender = make_sender(server, flush_at=2)
    for i in range(4):
        sender.collect("page_view", event_id=f"e{i}")
    assert server.arrived.wait(WAIT_S)  # the worker holds e0, e1 in a request that hangs
    sender.close(timeout_s=0.05)
    assert sender.stats.dropped == 2
    [(error, events)] = errors
    assert error.code == "not_sent_at_close"
    assert [event["event_id"] for event in events] == ["e2", "e3"]
    gate.set()
    assert sender.flush(WAIT_S)
    assert sender.stats.sent == 2


def test_an_event_after_close_is_dropped_and_reported(
    make_sender: Callable[..., BackgroundSender], errors: Errors
) -> None:
    sender = make_sender(Server(accept_all))
    sender.close()
    assert not sender.collect("late")
    assert sender.stats.dropped == 1
    assert errors[0][0].code == "sender_closed"


def test_a_field_that_cannot_be_json_fails_at_the_call(
    make_sender: Callable[..., BackgroundSender],
) -> None:
    sender = make_sender(Server(accept_all))
    with pytest.raises(TypeError):
        sender.collect("page_view", params={"when": object()})
    assert sender.stats.queued == 0


def test_a_failing_on_error_does_not_stop_the_sender(caplog: pytest.LogCaptureFixture) -> None:
    def boom(error: ThradError, events: list[dict[str, Any]]) -> None:
        raise RuntimeError("callback bug")

    with Thrad(
        api_key="k", base_url="https://x.example", transport=httpx.MockTransport(Server(accept_all))
    ) as client:
        sender = BackgroundSender(client, max_queue_size=1, on_error=boom)
        sender.collect("a")
        assert not sender.collect("b")
        sender.close()
    assert sender.stats.sent == 1
    assert "on_error raised" in caplog.text


EXIT_SCRIPT = """
import json, sys
import httpx
from thrad_events.client import BackgroundSender, Thrad

out = open(sys.argv[1], "a")

def record(request):
    out.write(request.content.decode() + "\\n")
    out.flush()
    events = json.loads(request.content)["events"]
    results = [{"index": i, "status": "ok"} for i in range(len(events))]
    totals = {"ok": len(events), "duplicate": 0, "error": 0}
    return httpx.Response(200, json={"results": results, "totals": totals})

client = Thrad(api_key="k", base_url="https://x.example", transport=httpx.MockTransport(record))
sender = BackgroundSender(client, flush_at=100, flush_interval_s=60)
for i in range(10):
    sender.collect("page_view", event_id=f"e{i}")
# no flush(), no close(): the interpreter exits with ten events queued
"""


def test_events_queued_at_interpreter_exit_are_sent(tmp_path: Path) -> None:
    out = tmp_path / "requests.jsonl"
    done = subprocess.run(
        [sys.executable, "-c", EXIT_SCRIPT, str(out)],
        capture_output=True,
        text=True,
        timeout=30,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    [body] = [json.loads(line) for line in out.read_text().splitlines()]
    assert [event["event_id"] for event in body["events"]] == [f"e{i}" for i in range(10)]
