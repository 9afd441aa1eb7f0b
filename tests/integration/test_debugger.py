"""The event debugger's live stream, GET /v1/api/debug/stream: each request of a partner as it
arrives (time, route, outcome, status, code, errors, the stored row with its enrichment), across
worker processes and servers sharing a store, to that partner's keys and the operator only."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server import ServerProcess, create_key, running_server, unique_name
from tests.integration.sse import EventStream

ADMIN_TOKEN = "debugger-admin-token-0123456789"
ENV = {"THRAD_ADMIN_TOKEN": ADMIN_TOKEN, "THRAD_DEBUG_HEARTBEAT_S": "1"}
STREAM = "/v1/api/debug/stream"
FIREFOX_UA = "Mozilla/5.0 (X11; Linux x86_64; rv:128.0) Gecko/20100101 Firefox/128.0"


@pytest.fixture(scope="module")
def module_debug_server(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """Two worker processes, an admin token, and a heartbeat every second; one per module (and
    store), each test streaming partners of its own."""
    log_path = tmp_path_factory.mktemp("debugger") / "server.log"
    with running_server(shared_database_url, log_path, workers=2, env=ENV) as process:
        yield process


@pytest.fixture
def debug_server(module_debug_server: ServerProcess) -> Iterator[ServerProcess]:
    """The module's server; an error it logs during the test fails the test."""
    with module_debug_server.logs_no_new_errors():
        yield module_debug_server


def partner_key(server: ServerProcess, *extra: str) -> dict[str, Any]:
    return create_key(server.database_url, unique_name("partner"), "test", *extra)


def stream_of(server: ServerProcess, token: str) -> EventStream:
    stream = EventStream(server.base_url + STREAM, token)
    if stream.status == 200:
        stream.next("hello")
    return stream


def post(server: ServerProcess, key: dict[str, Any], path: str, body: Any, **headers: str) -> int:
    answer = httpx.post(
        server.base_url + path,
        json=body,
        headers={"Authorization": f"Bearer {key['api_key']}", **headers},
        timeout=10,
    )
    return answer.status_code


def test_each_request_shows_live_with_its_outcome_errors_and_stored_row(
    debug_server: ServerProcess,
) -> None:
    key = partner_key(debug_server)
    stream = stream_of(debug_server, key["api_key"])
    try:
        event = {
            "event_name": "page_view",
            "event_id": "e-1",
            "user_agent": FIREFOX_UA,
            "client_ip": "81.2.69.160",
            "page_url": "https://shop.example.com/?utm_source=x",
        }
        assert post(debug_server, key, "/v1/api/collect", event) == 204
        ok = stream.next()
        assert ok["route"] == "collect"
        assert ok["path"] == "/v1/api/collect"
        assert (ok["outcome"], ok["status"], ok["code"]) == ("ok", 204, "stored")
        assert ok["event_name"] == "page_view"
        assert ok["stored"] is True
        assert ok["request_id"]
        assert ok["time"].endswith("Z")
        row = ok["row"]
        assert row["event_id"] == "e-1"
        assert row["partner_id"] == key["partner_id"]
        assert row["ua_browser"] == "Firefox"
        assert row["ip_address"] == "81.2.69.160"
        assert row["utm_source"] == "x"
        assert row["channel"] == "server"
        assert row["params"]["api_key_label"] == "test"

        assert post(debug_server, key, "/v1/api/collect", event) == 204
        duplicate = stream.next()
        assert (duplicate["outcome"], duplicate["code"]) == ("duplicate", "duplicate")
        assert duplicate["stored"] is False

        assert post(debug_server, key, "/v1/api/collect", {"tag_id": 7, "params": []}) == 400
        rejected = stream.next()
        assert (rejected["outcome"], rejected["status"]) == ("rejected", 400)
        assert rejected["code"] == "missing_field"
        assert {e["field"] for e in rejected["errors"]} == {"event_name", "tag_id", "params"}
        assert '"tag_id": 7' in rejected["body"] or '"tag_id":7' in rejected["body"]
        assert "row" not in rejected

        unknown = {"click_id": "11111111-1111-4111-8111-111111111111", "currency": "USD",
                   "conversion_time": "2026-02-19T18:00:00Z", "conversion_value": 5}  # fmt: skip
        assert post(debug_server, key, "/v1/api/conversion", unknown) == 404
        missing = stream.next()
        assert (missing["route"], missing["code"], missing["status"]) == (
            "conversion", "click_not_found", 404,
        )  # fmt: skip

        batch = {"events": [{"event_name": "a"}, {"event_id": "no-name"}]}
        assert post(debug_server, key, "/v1/api/collect/batch", batch) == 200
        mixed = stream.next()
        assert mixed["outcome"] == "partial"
        assert mixed["totals"] == {
            "ok": 1,
            "duplicate": 0,
            "error": 1,
        }
        assert mixed["items"][0]["row"]["event_name"] == "a"
        assert mixed["items"][1]["errors"][0]["field"] == "event_name"
    finally:
        stream.close()
    # Never the key nor the Authorization header, anywhere in what was streamed.
    assert key["api_key"] not in "\n".join(stream.raw)
    assert "Bearer" not in "\n".join(stream.raw)


def test_every_request_reaches_the_stream_whichever_worker_serves_it(
    debug_server: ServerProcess,
) -> None:
    key = partner_key(debug_server, "--rate-limit", "10000")
    stream = stream_of(debug_server, key["api_key"])
    try:
        # Each on a connection of its own: the kernel spreads them over both workers.
        for n in range(20):
            assert post(debug_server, key, "/v1/api/collect", {"event_name": f"n{n}"}) == 204
        names = {event["event_name"] for event in stream.requests(20)}
    finally:
        stream.close()
    assert names == {f"n{n}" for n in range(20)}


def test_a_stream_on_one_server_sees_requests_sent_to_another(
    database_url: str, tmp_path: Path
) -> None:
    """Servers sharing a store (nodes on PostgreSQL, processes on one SQLite file)."""
    with (
        running_server(database_url, tmp_path / "first.log", env=ENV) as first,
        running_server(database_url, tmp_path / "second.log", env=ENV) as second,
    ):
        key = create_key(database_url)
        stream = stream_of(first, key["api_key"])
        try:
            assert post(second, key, "/v1/api/collect", {"event_name": "elsewhere"}) == 204
            event = stream.next()
        finally:
            stream.close()
    assert event["event_name"] == "elsewhere"
    assert event["row"]["event_name"] == "elsewhere"


def test_a_partner_sees_only_its_own_requests_and_the_operator_every_partner(
    debug_server: ServerProcess,
) -> None:
    acme = partner_key(debug_server)
    globex = partner_key(debug_server)
    mine = stream_of(debug_server, acme["api_key"])
    operator = stream_of(debug_server, ADMIN_TOKEN)
    try:
        assert post(debug_server, globex, "/v1/api/collect", {"event_name": "theirs"}) == 204
        assert post(debug_server, acme, "/v1/api/collect", {"event_name": "mine"}) == 204
        assert mine.next()["event_name"] == "mine"
        seen = {event["event_name"]: event["partner_id"] for event in operator.requests(2)}
    finally:
        mine.close()
        operator.close()
    assert seen == {"theirs": globex["partner_id"], "mine": acme["partner_id"]}
    assert not any("theirs" in line for line in mine.raw)


@pytest.mark.parametrize(
    "authorization",
    [None, "Bearer thr_not-a-key", "Basic dXNlcjpwYXNz", f"Bearer {ADMIN_TOKEN}x"],
)
def test_the_stream_refuses_whoever_has_no_valid_key(
    debug_server: ServerProcess, authorization: str | None
) -> None:
    headers = {"Authorization": authorization} if authorization else {}
    answer = httpx.get(debug_server.base_url + STREAM, headers=headers, timeout=10)
    assert answer.status_code == 401
    assert answer.json()["error"]["code"] == "unauthorized"
    assert answer.headers["www-authenticate"].startswith("Bearer")


@pytest.mark.sqlite_only("the cap is per process, whatever the store")
def test_open_streams_are_capped_per_partner(database_url: str, tmp_path: Path) -> None:
    streams: list[EventStream] = []
    with running_server(database_url, tmp_path / "server.log", env=ENV) as server:
        try:
            key = create_key(database_url)
            streams = [stream_of(server, key["api_key"]) for _ in range(5)]
            refused = EventStream(server.base_url + STREAM, key["api_key"])
            assert refused.status == 429
            assert refused.error_body is not None
            assert refused.error_body["error"]["code"] == "rate_limited"
            # Another partner still gets one, and a closed stream frees its place.
            other = stream_of(server, create_key(database_url, "globex")["api_key"])
            assert other.status == 200
            streams.append(other)
            streams.pop(0).close()
            again = EventStream(server.base_url + STREAM, key["api_key"])
            for _ in range(20):
                if again.status == 200:
                    break
                again = EventStream(server.base_url + STREAM, key["api_key"])
            assert again.status == 200
            streams.append(again)
        finally:
            for stream in streams:
                stream.close()


def test_heartbeats_keep_an_idle_stream_open(
    debug_server: ServerProcess,
) -> None:
    stream = stream_of(debug_server, partner_key(debug_server)["api_key"])
    try:
        for _ in range(100):
            if ": heartbeat" in stream.raw:
                break
            stream.ended.wait(0.1)
    finally:
        stream.close()
    assert ": heartbeat" in stream.raw


def test_the_server_stops_cleanly_with_a_stream_open(database_url: str, tmp_path: Path) -> None:
    with running_server(database_url, tmp_path / "server.log", workers=2, env=ENV) as server:
        stream = stream_of(server, create_key(database_url)["api_key"])
        try:
            # uvicorn waits for responses in progress; a stream must not hold it for its grace
            # time.
            assert server.stop(timeout_s=10) == 0
            assert stream.next("bye")["reason"]
            assert stream.ended.wait(10)
        finally:
            stream.close()
