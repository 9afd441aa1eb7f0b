"""Many processes on one PostgreSQL: shared dedupe, shared revocation, and surviving an outage.

Contract: "Deduplication holds under concurrency and across processes: N identical requests
racing give exactly one ok"; "Revoking a key takes effect within 5 seconds on every process";
"storage unreachable: 503 (+ Retry-After)"; "A 204 or ok means the row is committed".
"""

from __future__ import annotations

import threading
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest

from tests.integration.server import ServerProcess, cli, create_key, export, free_port, real_click
from tests.postgres import postgres_schema, private_cluster

FAST_KEY = ("--rate-limit", "100000")


@pytest.fixture
def pg_url() -> Iterator[str]:
    with postgres_schema() as url:
        yield url


@pytest.fixture
def two_servers(pg_url: str, tmp_path: Path) -> Iterator[tuple[ServerProcess, ServerProcess]]:
    """Two `serve` processes on different ports, as two nodes behind a load balancer."""
    first = ServerProcess(pg_url, tmp_path / "a.log")
    try:
        second = ServerProcess(pg_url, tmp_path / "b.log")
    except BaseException:
        first.stop()
        raise
    try:
        yield first, second
    finally:
        first.stop()
        second.stop()
    for process in (first, second):
        errors = process.error_lines()
        assert not errors, "server logged errors:\n" + "\n".join(errors)


def test_forty_racing_identical_conversions_on_two_nodes_give_exactly_one_ok(
    two_servers: tuple[ServerProcess, ServerProcess], pg_url: str
) -> None:
    key = create_key(pg_url, "acme", "race", *FAST_KEY)["api_key"]
    click_id = real_click(two_servers[0])
    body = {
        "click_id": click_id,
        "conversion_time": "2026-02-19T18:00:00Z",
        "conversion_value": 49.990,
        "currency": "USD",
        "order_id": "order-race",
        "event_id": "conv-race",
    }
    start = threading.Barrier(40)

    def send(i: int) -> str:
        server = two_servers[i % 2]
        start.wait()
        answer = httpx.post(
            f"{server.base_url}/v1/api/conversion",
            json=body,
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        assert answer.status_code == 200, answer.text
        return str(answer.json()["status"])

    with ThreadPoolExecutor(40) as pool:
        statuses = Counter(pool.map(send, range(40)))
    assert statuses == {"ok": 1, "duplicate": 39}
    [row] = export(pg_url, "conversions")
    assert row["conversion_value"] == "49.99"


def test_a_key_revoked_through_the_cli_is_refused_by_both_nodes_within_5_s(
    two_servers: tuple[ServerProcess, ServerProcess], pg_url: str
) -> None:
    key = create_key(pg_url, "acme", "revoked", *FAST_KEY)
    headers = {"Authorization": f"Bearer {key['api_key']}"}
    event = {"event_name": "page_view", "tag_id": "adv_001"}
    for server in two_servers:
        answer = httpx.post(f"{server.base_url}/v1/api/collect", json=event, headers=headers)
        assert answer.status_code == 204
    cli(pg_url, "keys", "revoke", key["key_id"])
    revoked_at = time.monotonic()
    refused: dict[int, float] = {}
    while len(refused) < 2 and time.monotonic() - revoked_at < 6:
        for server in two_servers:
            if server.port in refused:
                continue
            answer = httpx.post(f"{server.base_url}/v1/api/collect", json=event, headers=headers)
            if answer.status_code == 401:
                refused[server.port] = time.monotonic() - revoked_at
        time.sleep(0.1)
    assert len(refused) == 2, "a node still accepts the revoked key"
    assert max(refused.values()) < 5


def _load(
    base_url: str, api_key: str, stop: threading.Event, seen: list[tuple[str, int, str | None]]
) -> None:
    """Sequential collects with fresh event ids: (event_id, status, Retry-After) of each."""
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=10
    ) as http:
        while not stop.is_set():
            event_id = uuid.uuid4().hex
            started = time.monotonic()
            answer = http.post(
                "/v1/api/collect",
                json={"event_name": "page_view", "tag_id": "outage", "event_id": event_id},
            )
            assert time.monotonic() - started < 8, "a request hung"
            seen.append((event_id, answer.status_code, answer.headers.get("retry-after")))
            if answer.status_code == 503:
                time.sleep(0.05)


@pytest.mark.long
def test_postgres_stopped_and_restarted_mid_load_gives_503s_then_recovers_losing_nothing(
    tmp_path: Path,
) -> None:
    """On a private PostgreSQL, so stopping it disturbs nobody else's tests."""
    with private_cluster(free_port()) as cluster:
        server = ServerProcess(cluster.url, tmp_path / "outage.log")
        key: dict[str, Any] = create_key(cluster.url, "acme", "outage", *FAST_KEY)
        stop = threading.Event()
        seen: list[tuple[str, int, str | None]] = []
        loaders = [
            threading.Thread(target=_load, args=(server.base_url, key["api_key"], stop, seen))
            for _ in range(4)
        ]
        try:
            for thread in loaders:
                thread.start()
            time.sleep(1.0)
            cluster.stop()
            time.sleep(2.0)
            ready_during_outage = httpx.get(f"{server.base_url}/readyz").status_code
            cluster.start()
            restarted = time.monotonic()
            while httpx.get(f"{server.base_url}/readyz").status_code != 200:
                assert time.monotonic() - restarted < 30, "readyz never recovered"
                time.sleep(0.2)
            mark = len(seen)
            time.sleep(1.5)
        finally:
            stop.set()
            for thread in loaders:
                thread.join(15)
            server.stop()
        stored = {row["event_id"] for row in export(cluster.url, "events")}
    statuses = Counter(status for _, status, _ in seen)
    assert set(statuses) <= {204, 503}, f"unexpected answers: {statuses}"
    assert statuses[503] > 0, "no 503 while PostgreSQL was down"
    assert all(retry for _, status, retry in seen if status == 503), "a 503 without Retry-After"
    assert ready_during_outage == 503
    assert any(status == 204 for _, status, _ in seen[mark:]), "no 204 after recovery"
    acked = {event_id for event_id, status, _ in seen if status == 204}
    assert acked <= stored, f"{len(acked - stored)} acknowledged events lost"
    assert "Traceback" not in server.log()


def test_a_stuck_postgres_gives_503_within_the_write_timeout_then_recovers(
    pg_url: str, tmp_path: Path
) -> None:
    """A lock held elsewhere stalls every insert: requests are answered 503, never left hanging."""
    server = ServerProcess(pg_url, tmp_path / "stuck.log")
    key = create_key(pg_url, "acme", "stuck", *FAST_KEY)["api_key"]
    headers = {"Authorization": f"Bearer {key}"}

    def collect(event_id: str) -> tuple[httpx.Response, float]:
        sent = time.monotonic()
        answer = httpx.post(
            f"{server.base_url}/v1/api/collect",
            json={"event_name": "page_view", "tag_id": "stuck", "event_id": event_id},
            headers=headers,
            timeout=10,
        )
        return answer, time.monotonic() - sent

    try:
        assert collect("before")[0].status_code == 204
        with psycopg.connect(pg_url) as blocker:
            blocker.execute("LOCK TABLE events IN ACCESS EXCLUSIVE MODE")
            answers = [collect(f"during-{i}") for i in range(4)]
            assert [a.status_code for a, _ in answers] == [503] * 4
            assert all(int(a.headers["Retry-After"]) >= 1 for a, _ in answers)
            assert max(t for _, t in answers) < 1.5
            blocker.rollback()
        deadline = time.monotonic() + 15
        while collect("after")[0].status_code != 204:
            assert time.monotonic() < deadline, "never recovered"
            time.sleep(0.2)
        assert httpx.get(f"{server.base_url}/readyz").status_code == 200
    finally:
        server.stop()
    stored = {row["event_id"] for row in export(pg_url, "events")}
    assert {"before", "after"} <= stored
    assert "Traceback" not in server.log()
