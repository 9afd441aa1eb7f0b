"""debugstream/hub.py: who watches, what a slow reader loses (counted, never memory), caps."""

from __future__ import annotations

import asyncio

import pytest

from thrad_events.debugstream import hub as hubs
from thrad_events.debugstream.bus import LocalBus
from thrad_events.debugstream.capture import Capture
from thrad_events.debugstream.hub import DebugHub
from thrad_events.errors import Outcome, RateLimited, Unavailable


def publish(hub: DebugHub, partner_id: str, name: str) -> None:
    began = hub.begin()
    began[0].partner_id = partner_id
    began[0].row = {"event_name": name}
    hub.finish(began, {"method": "POST", "path": "/v1/api/collect"}, "collect", "r", 204,
               Outcome.STORED, None)  # fmt: skip


async def settle() -> None:
    for _ in range(5):
        await asyncio.sleep(0)


def test_nobody_watching_is_the_flag_down_and_a_stream_raises_it() -> None:
    async def scenario() -> None:
        hub = DebugHub(LocalBus())
        await hub.start()
        assert not hub.active
        subscription = hub.subscribe("ptn_a")
        await settle()
        assert hub.active
        assert hub.wants("ptn_a")
        assert not hub.wants("ptn_b")
        hub.unsubscribe(subscription)
        hub._expire(float("inf"))  # the lease runs out
        assert not hub.active
        await hub.close()

    asyncio.run(scenario())


def test_a_lease_outlives_missed_announcements_and_then_runs_out() -> None:
    """A watcher held up for a few rounds (a loaded machine, a bus reconnecting) keeps the
    partner watched everywhere; silence past the lease's life lowers the flag."""

    async def scenario() -> None:
        hub = DebugHub(LocalBus())
        await hub.start()
        hub.subscribe("ptn_a")
        await settle()
        until = hub._leases["ptn_a"]
        heard_at = until - hubs.LEASE_TTL_S
        # The next announcement due at heard_at + 1 round; three went missing.
        hub._expire(heard_at + 4 * hubs.LEASE_EVERY_S)
        assert hub.active
        assert hub.wants("ptn_a")
        hub._expire(until + 0.001)
        assert not hub.active
        assert not hub.wants("ptn_a")
        await hub.close()

    asyncio.run(scenario())


def test_a_partner_hears_its_own_requests_and_the_operator_all() -> None:
    async def scenario() -> None:
        hub = DebugHub(LocalBus())
        await hub.start()
        mine, everyone = hub.subscribe("ptn_a"), hub.subscribe(None)
        await settle()
        publish(hub, "ptn_a", "ours")
        publish(hub, "ptn_b", "theirs")
        await settle()
        assert [b"ours" in payload for payload in mine.take()[0]] == [True]
        assert len(everyone.take()[0]) == 2
        await hub.close()

    asyncio.run(scenario())


def test_a_slow_reader_loses_events_counted_and_never_grows() -> None:
    async def scenario() -> None:
        hub = DebugHub(LocalBus(), queue_max_events=3)
        await hub.start()
        subscription = hub.subscribe("ptn_a")
        await settle()
        for n in range(10):
            publish(hub, "ptn_a", f"e{n}")
        await settle()
        payloads, missed = subscription.take()
        assert (len(payloads), missed) == (3, 7)
        assert subscription.take() == ([], 0)
        await hub.close()

    asyncio.run(scenario())


def test_streams_are_capped_per_partner_and_per_process() -> None:
    async def scenario() -> None:
        hub = DebugHub(LocalBus(), streams_per_partner=2, streams_per_process=3)
        await hub.start()
        hub.subscribe("ptn_a")
        hub.subscribe("ptn_a")
        with pytest.raises(RateLimited):
            hub.subscribe("ptn_a")
        hub.subscribe("ptn_b")
        with pytest.raises(RateLimited):
            hub.subscribe("ptn_c")
        await hub.close()

    asyncio.run(scenario())


def test_shutting_down_ends_every_stream() -> None:
    async def scenario() -> None:
        hub = DebugHub(LocalBus())
        await hub.start()
        subscription = hub.subscribe(None)
        hub.shut_down()
        assert subscription.closing
        assert subscription.wake.is_set()
        with pytest.raises(Unavailable):
            hub.subscribe(None)
        await hub.close()

    asyncio.run(scenario())


def test_the_request_path_notes_nothing_unless_begun() -> None:
    from thrad_events.debugstream import capture

    assert capture.current.get() is None
    hub = DebugHub(LocalBus())
    began = hub.begin()
    assert isinstance(capture.current.get(), Capture)
    hub.forget(began)
    assert capture.current.get() is None
    assert hubs.ALL == "*"
