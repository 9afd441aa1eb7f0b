"""Storage stalls answer 503 with Retry-After quickly; SIGTERM drains; nothing acked is lost."""

from __future__ import annotations

import sqlite3
import threading
import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server import ServerProcess, create_key, export


def _event(event_id: str) -> dict[str, str]:
    return {"event_name": "page_view", "event_id": event_id, "tag_id": "bp"}


@pytest.mark.sqlite_only("locks the SQLite file; test_postgres.py locks PostgreSQL's table")
def test_locked_storage_gives_503_quickly_then_recovers(
    server: ServerProcess, client: httpx.Client, database_url: str
) -> None:
    assert client.post("/v1/api/collect", json=_event("before")).status_code == 204
    blocker = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    blocker.execute("BEGIN EXCLUSIVE")  # storage "down": nobody else can write
    try:
        answers = []
        started = time.monotonic()
        for i in range(5):
            sent = time.monotonic()
            answer = client.post("/v1/api/collect", json=_event(f"during-{i}"))
            answers.append((answer, time.monotonic() - sent))
        elapsed = time.monotonic() - started
        statuses = [a.status_code for a, _ in answers]
        assert statuses == [503] * 5
        assert all(a.json()["error"]["code"] == "unavailable" for a, _ in answers)
        assert all(int(a.headers["Retry-After"]) >= 1 for a, _ in answers)
        # Never a hang: each answer within the write timeout, later ones at once.
        assert max(t for _, t in answers) < 1.5
        assert elapsed < 8
        assert httpx.get(f"{server.base_url}/readyz").status_code == 503
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    deadline = time.monotonic() + 10
    while httpx.get(f"{server.base_url}/readyz").status_code != 200:
        assert time.monotonic() < deadline, "readyz never recovered"
        time.sleep(0.1)
    assert client.post("/v1/api/collect", json=_event("after")).status_code == 204
    stored = {row["event_id"] for row in export(database_url, "events")}
    assert {"before", "after"} <= stored


def _load(base_url: str, api_key: str, acked: list[str], stop: threading.Event) -> None:
    """Sequential collects until stopped or the server goes away; records every 204."""
    with httpx.Client(
        base_url=base_url, headers={"Authorization": f"Bearer {api_key}"}, timeout=5
    ) as http:
        while not stop.is_set():
            event_id = uuid.uuid4().hex
            try:
                answer = http.post("/v1/api/collect", json=_event(event_id))
            except httpx.TransportError:
                return
            if answer.status_code == 204:
                acked.append(event_id)


def _run_graceful(tmp_path: Path, workers: int) -> None:
    database_url = f"sqlite:///{tmp_path / 'graceful.db'}"
    server = ServerProcess(database_url, tmp_path / "graceful.log", workers=workers)
    key: dict[str, Any] = create_key(database_url, "acme", "graceful", "--rate-limit", "100000")
    acked: list[str] = []
    stop = threading.Event()
    threads = [
        threading.Thread(target=_load, args=(server.base_url, key["api_key"], acked, stop))
        for _ in range(8)
    ]
    for thread in threads:
        thread.start()
    time.sleep(1.0)
    code = server.stop()
    stop.set()
    for thread in threads:
        thread.join(10)
    assert code == 0, server.log()
    assert acked, "the load never got an answer"
    stored = [row["event_id"] for row in export(database_url, "events")]
    assert len(stored) == len(set(stored))
    missing = set(acked) - set(stored)
    assert not missing, f"{len(missing)} acknowledged events lost"
    assert not server.error_lines()


def test_sigterm_drains_and_exits_0_keeping_every_acked_event(tmp_path: Path) -> None:
    _run_graceful(tmp_path, workers=1)


def test_sigterm_with_two_workers_keeps_every_acked_event(tmp_path: Path) -> None:
    _run_graceful(tmp_path, workers=2)


def test_a_full_write_queue_answers_503_at_once_counting_a_batch_by_its_rows(
    tmp_path: Path,
) -> None:
    """Saturated storage (contract: 503 + Retry-After): with room for 500 rows and a batch of 500
    already waiting, one more event is refused at once, before any stall or write timeout."""
    database_url = f"sqlite:///{tmp_path / 'full.db'}"
    server = ServerProcess(
        database_url, tmp_path / "full.log", env={"THRAD_WRITE_QUEUE_MAX_ROWS": "500"}
    )
    key: dict[str, Any] = create_key(database_url, "acme", "full", "--rate-limit", "100000")
    headers = {"Authorization": f"Bearer {key['api_key']}"}

    def batch(prefix: str) -> None:
        events = [_event(f"{prefix}-{i}") for i in range(500)]
        httpx.post(
            f"{server.base_url}/v1/api/collect/batch",
            json={"events": events},
            headers=headers,
            timeout=10,
        )

    blocker = sqlite3.connect(database_url.removeprefix("sqlite:///"), isolation_level=None)
    try:
        blocker.execute("BEGIN EXCLUSIVE")
        # The first batch is taken by the writer, which waits for the file; the second waits in
        # the queue and fills it.
        senders = [threading.Thread(target=batch, args=(name,)) for name in ("first", "second")]
        for sender in senders:
            sender.start()
            time.sleep(0.2)
        sent = time.monotonic()
        answer = httpx.post(
            f"{server.base_url}/v1/api/collect",
            json=_event("one-too-many"),
            headers=headers,
            timeout=10,
        )
        took = time.monotonic() - sent
    finally:
        blocker.execute("ROLLBACK")
        blocker.close()
    try:
        for sender in senders:
            sender.join(10)
        assert answer.status_code == 503
        assert answer.json()["error"]["code"] == "unavailable"
        assert int(answer.headers["Retry-After"]) >= 1
        assert took < 0.5, f"refused only after {took:.2f} s"
        again = httpx.post(
            f"{server.base_url}/v1/api/collect", json=_event("after"), headers=headers, timeout=10
        )
        assert again.status_code == 204
    finally:
        server.stop()
    stored = {row["event_id"] for row in export(database_url, "events")}
    assert "one-too-many" not in stored
    assert "after" in stored
