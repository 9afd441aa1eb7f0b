"""A 204 means committed: killing the server mid-load loses nothing it acknowledged.

Contract: "A 204 or ok means the row is committed to storage: a process killed right after the
answer loses nothing it acknowledged."
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter
from pathlib import Path

import httpx

from tests.integration.server import ServerProcess, create_key, export

CONCURRENCY = 16
ACKS_BEFORE_KILL = 400


def test_sigkill_mid_load_loses_no_acknowledged_event(tmp_path: Path) -> None:
    """Concurrent collects with unique event_ids; SIGKILL while they are in flight; every
    event_id that got a 204 is in the export exactly once."""
    database_url = f"sqlite:///{tmp_path / 'thrad.db'}"
    server = ServerProcess(database_url, tmp_path / "server.log")
    key = create_key(database_url, "acme", "load", "--rate-limit", "1000000")
    acked: list[str] = []
    sent = 0
    failures: list[BaseException] = []

    async def sender(worker: int, http: httpx.AsyncClient) -> None:
        nonlocal sent
        for n in range(1_000_000):
            event_id = f"w{worker}-{n}"
            sent += 1
            try:
                response = await http.post(
                    "/v1/api/collect",
                    json={"event_name": "load", "tag_id": "durability", "event_id": event_id},
                )
            except httpx.TransportError:
                return  # the server is gone: this request was never acknowledged
            if response.status_code == 204:
                acked.append(event_id)

    async def load() -> None:
        async with httpx.AsyncClient(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {key['api_key']}"},
            timeout=10,
            limits=httpx.Limits(max_connections=CONCURRENCY),
        ) as http:
            await asyncio.gather(*(sender(worker, http) for worker in range(CONCURRENCY)))

    def run_load() -> None:
        try:
            asyncio.run(load())
        except BaseException as exc:  # surfaced in the test thread below
            failures.append(exc)

    thread = threading.Thread(target=run_load, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 60
        while len(acked) < ACKS_BEFORE_KILL and thread.is_alive():
            assert time.monotonic() < deadline, f"only {len(acked)} acknowledged in 60 s"
            time.sleep(0.01)
        in_flight_at_kill = thread.is_alive()
        acked_at_kill = len(acked)
        server.kill()
        thread.join(30)
        assert not thread.is_alive(), "the load did not stop after the server was killed"
    finally:
        server.kill()
        server.stop()
    assert not failures, failures
    assert in_flight_at_kill, "the load ended before the kill: nothing was in flight"
    assert acked_at_kill >= ACKS_BEFORE_KILL
    assert sent > len(acked)  # some requests were cut off by the kill

    stored = Counter(row["event_id"] for row in export(database_url, "events"))
    missing = [event_id for event_id in acked if stored[event_id] == 0]
    doubled = [event_id for event_id in acked if stored[event_id] > 1]
    assert not missing, f"{len(missing)} of {len(acked)} acknowledged events lost: {missing[:5]}"
    assert not doubled, doubled[:5]
    assert len(acked) == len(set(acked))
