"""debugstream/bus.py: workers of one host on unix sockets, a newcomer greeted before it serves."""

from __future__ import annotations

import asyncio
import socket
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from thrad_events.debugstream import hub as hubs
from thrad_events.debugstream.bus import UnixSocketBus
from thrad_events.debugstream.hub import DebugHub
from thrad_events.errors import Outcome


@pytest.fixture
def directory(tmp_path: Path) -> Iterator[Path]:
    # Unix socket paths are capped at about 100 bytes: pytest's tmp_path can be longer.
    short = Path("/tmp") / f"thrad-test-{tmp_path.name[-20:]}-{id(tmp_path) % 10_000}"
    yield short
    if short.exists():
        for leftover in short.iterdir():
            leftover.unlink()
        short.rmdir()


@pytest.fixture
def no_rounds(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only the first round of each hub runs: what a test sees cannot come from a later one."""
    monkeypatch.setattr(hubs, "LEASE_EVERY_S", 3600.0)


def publish(hub: DebugHub, partner_id: str, name: str) -> None:
    began = hub.begin()
    began[0].partner_id = partner_id
    began[0].row = {"event_name": name}
    hub.finish(began, {"method": "POST", "path": "/v1/api/collect"}, "collect", "r", 204,
               Outcome.STORED, None)  # fmt: skip


async def until(condition: Callable[[], object]) -> None:
    for _ in range(500):
        if condition():
            return
        await asyncio.sleep(0.01)
    raise TimeoutError("not within 5 s")


def test_a_worker_that_starts_after_a_stream_opened_knows_it_before_serving(
    directory: Path, no_rounds: None
) -> None:
    """The lost events: a worker started after the watching one's last round used to serve
    requests before any lease reached it (the watcher had no connection to it yet), and
    dropped them as unwatched."""

    async def scenario() -> None:
        watcher = DebugHub(UnixSocketBus(directory))
        await watcher.start()
        subscription = watcher.subscribe("ptn_a")
        await asyncio.wait_for(subscription.ready.wait(), 5)

        newcomer = DebugHub(UnixSocketBus(directory))
        await newcomer.start()
        # No await between start and the request: what it knows, it knew when it started.
        assert newcomer.active
        assert newcomer.wants("ptn_a")
        publish(newcomer, "ptn_a", "first")
        await until(lambda: subscription.queue)
        assert b'"first"' in subscription.take()[0][0]
        await newcomer.close()
        await watcher.close()

    asyncio.run(scenario())


def test_a_stream_opened_later_reaches_every_worker_on_their_connections(
    directory: Path, no_rounds: None
) -> None:
    async def scenario() -> None:
        first, second = DebugHub(UnixSocketBus(directory)), DebugHub(UnixSocketBus(directory))
        await first.start()
        await second.start()
        subscription = second.subscribe(None)
        await asyncio.wait_for(subscription.ready.wait(), 5)
        await until(lambda: first.active)
        publish(first, "ptn_b", "from-first")
        await until(lambda: subscription.queue)
        await first.close()
        await second.close()

    asyncio.run(scenario())


def test_a_hello_naming_a_socket_elsewhere_is_ignored(directory: Path, no_rounds: None) -> None:
    async def scenario() -> None:
        bus = UnixSocketBus(directory)
        await bus.start(lambda frame: None, lambda: None)
        bus._hello("/tmp/elsewhere/1-x.sock")
        bus._hello(str(directory / "not-a-socket"))
        await asyncio.sleep(0.05)
        assert not bus._answering
        assert set(bus._peers) == {str(bus._path)}
        await bus.close()

    asyncio.run(scenario())


def test_leftovers_are_tolerated_and_the_last_worker_removes_the_directory(
    directory: Path, no_rounds: None
) -> None:
    directory.mkdir(mode=0o700)
    # A socket file nobody listens on, of a process that is gone (pids stop far below).
    stale = directory / "999999999-dead.sock"
    with socket.socket(socket.AF_UNIX) as sock:
        sock.bind(str(stale))
    still_there: list[bool] = []

    async def two_workers() -> None:
        first, second = DebugHub(UnixSocketBus(directory)), DebugHub(UnixSocketBus(directory))
        await first.start()
        await second.start()
        await first.close()
        still_there.append(await asyncio.to_thread(directory.exists))
        await second.close()

    asyncio.run(two_workers())
    assert not stale.exists()
    assert still_there == [True]
    assert not directory.exists()

    async def one_more() -> None:
        # A worker starting afterwards makes the directory again.
        again = DebugHub(UnixSocketBus(directory))
        await again.start()
        await again.close()

    asyncio.run(one_more())
