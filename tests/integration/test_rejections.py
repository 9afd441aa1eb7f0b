"""Rejections kept and the delivery report, through the real server on both stores.

Every request under a valid key answered 400, 404, 408, 413, 415, 422 or 431 is kept (its fields
and the first 2 KiB of its body), also one whose head the HTTP layer refused; 429s are counted
per key and minute, not kept; under a flood at most 100 per key and second are kept and the rest
counted; a key sees its own partner's, the admin token every partner's; the delivery numbers add
up and match the stored rows; old rejections are deleted after the retention.
"""

from __future__ import annotations

import csv
import gzip
import io
import json
import socket
import sqlite3
import time
import uuid
from collections import Counter
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import httpx
import psycopg
import pytest

from tests.integration.server import (
    ServerProcess,
    api_client,
    cli,
    create_key,
    export,
    real_click,
    running_server,
    unique_name,
)

ADMIN_TOKEN = "admin-token-for-rejection-tests"
T = TypeVar("T")


@pytest.fixture(scope="module")
def module_server(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    """The server with an admin token and short body and head timeouts (for 408s), one per
    module (and store): each test's keys are of partners of its own, and it reads those
    partners' rows."""
    env = {
        "THRAD_ADMIN_TOKEN": ADMIN_TOKEN,
        "THRAD_BODY_TIMEOUT_S": "1",
        "THRAD_HEADER_TIMEOUT_S": "1",
    }
    log_path = tmp_path_factory.mktemp("rejections") / "server.log"
    with running_server(shared_database_url, log_path, env=env) as process:
        yield process


@pytest.fixture
def server(module_server: ServerProcess) -> Iterator[ServerProcess]:
    """The module's server; an error it logs during the test fails the test."""
    with module_server.logs_no_new_errors():
        yield module_server


def wait_for(fetch: Callable[[], T], done: Callable[[T], bool], timeout_s: float = 20) -> T:
    """Poll `fetch` until `done` says yes (rejections reach storage in the background)."""
    deadline = time.monotonic() + timeout_s
    while True:
        found = fetch()
        if done(found) or time.monotonic() > deadline:
            return found
        time.sleep(0.1)


def rejections(http: httpx.Client, **params: Any) -> dict[str, Any]:
    answer = http.get("/v1/api/rejections", params={"limit": 1000, **params})
    assert answer.status_code == 200, answer.text
    return dict(answer.json())


def delivery(http: httpx.Client, **params: Any) -> list[dict[str, Any]]:
    answer = http.get("/v1/api/reports/delivery", params=params)
    assert answer.status_code == 200, answer.text
    return list(answer.json()["rows"])


def _conversion(click_id: str, **extra: Any) -> dict[str, Any]:
    return {
        "click_id": click_id,
        "conversion_time": "2026-02-01T10:00:00Z",
        "conversion_value": 9.5,
        "currency": "USD",
        **extra,
    }


def _slow_body(server: ServerProcess, api_key: str) -> int:
    """A body that never arrives whole: the server answers 408 after its body timeout."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(
            b"POST /v1/api/collect HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {api_key}\r\nContent-Length: 100\r\n\r\n".encode()
            + b'{"event_name":'
        )
        answer = sock.recv(65536).decode("latin-1")
    return int(answer.split(" ", 2)[1])


def test_each_refused_status_is_kept_with_its_fields(server: ServerProcess, partner: str) -> None:
    database_url = server.database_url
    key = create_key(database_url, partner, "kept")
    with api_client(server, key["api_key"]) as http:
        sent = {
            "invalid_json": http.post("/v1/api/collect", content=b"\x1b[31m{not json" * 300),
            "missing_field": http.post("/v1/api/collect", json={"tag_id": "t"}),
            "validation_error": http.post("/v1/api/collect", json={"event_name": 5}),
            "click_not_found": http.post("/v1/api/conversion", json=_conversion(str(uuid.uuid4()))),
            "payload_too_large": http.post("/v1/api/collect", content=b"x" * (1024 * 1024 + 1)),
            "unsupported_encoding": http.post(
                "/v1/api/collect",
                content=b'{"event_name":"x"}',
                headers={"Content-Encoding": "br"},
            ),
        }
        assert _slow_body(server, key["api_key"]) == 408
        statuses = {code: answer.status_code for code, answer in sent.items()}
        assert statuses == {
            "invalid_json": 400,
            "missing_field": 400,
            "validation_error": 422,
            "click_not_found": 404,
            "payload_too_large": 413,
            "unsupported_encoding": 415,
        }
        page = wait_for(lambda: rejections(http), lambda p: len(p["rejections"]) >= 7)
    kept = {row["code"]: row for row in page["rejections"]}
    assert set(kept) == {*sent, "request_timeout"}
    assert kept["request_timeout"]["status"] == 408
    for code, answer in sent.items():
        row = kept[code]
        assert row["status"] == answer.status_code
        assert row["partner_id"] == key["partner_id"]
        assert row["key_id"] == key["key_id"]
        assert row["request_id"] == answer.headers["x-request-id"]
        assert row["message"] == answer.json()["error"]["message"]
    assert kept["click_not_found"]["route"] == "conversion"
    assert kept["validation_error"]["route"] == "collect"
    assert kept["validation_error"]["details"] == [
        {"field": "event_name", "message": "must be a string"}
    ]
    assert kept["validation_error"]["body"] == '{"event_name":5}'
    # The first 2 KiB of the body, no more; a body never read (413) is empty.
    assert kept["invalid_json"]["body"] == (b"\x1b[31m{not json" * 300)[:2048].decode()
    assert kept["payload_too_large"]["body"] == ""
    # Newest first.
    times = [row["received_at"] for row in page["rejections"]]
    assert times == sorted(times, reverse=True)
    assert page["not_kept"] == 0
    # The CLI shows what the client sent inert on a terminal.
    table = cli(database_url, "rejections", "--partner", partner)
    assert "\x1b" not in table
    assert "\\x1b[31m" in table
    as_json = json.loads(cli(database_url, "rejections", "--json", "--limit", "3"))
    assert len(as_json["rejections"]) == 3
    assert as_json["truncated"] is True


def _raw_head(server: ServerProcess, head: bytes) -> tuple[int, str]:
    """Send `head` as is; the status and X-Request-ID of the answer (the server closes after it)."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=10) as sock:
        sock.sendall(head)
        answer = b""
        while chunk := sock.recv(65536):
            answer += chunk
    status_line, *lines = answer.split(b"\r\n\r\n")[0].decode("latin-1").split("\r\n")
    headers = dict(line.split(": ", 1) for line in lines)
    return int(status_line.split(" ")[1]), headers["x-request-id"]


def test_a_head_refused_before_the_app_is_kept_under_its_key(
    server: ServerProcess, partner: str
) -> None:
    """431 and a head's 408 are answered by the HTTP layer before any endpoint runs; a head that
    carried a valid key before it was refused is kept all the same, and one without is not."""
    key = create_key(server.database_url, partner, "heads")
    auth = f"Authorization: Bearer {key['api_key']}\r\n".encode()
    many = b"".join(b"X-Filler-%d: y\r\n" % n for n in range(120))
    too_many = _raw_head(
        server,
        b"POST /v1/api/collect HTTP/1.1\r\nHost: x\r\nX-Request-ID: head-431\r\n"
        + auth
        + many
        + b"Content-Length: 2\r\n\r\n{}",
    )
    assert too_many == (431, "head-431")
    # Never finished: the header timeout (1 s here) answers 408. (The parser hands a header
    # line over once the next begins.)
    slow = _raw_head(server, b"POST /v1/api/conversion/batch HTTP/1.1\r\n" + auth + b"Host: x")
    assert slow[0] == 408
    # Without a key, or with one that is not valid: answered the same, kept for nobody.
    assert _raw_head(server, b"POST /v1/api/collect HTTP/1.1\r\n" + many)[0] == 431
    bad_key = b"Authorization: Bearer thr_" + b"x" * 43 + b"\r\n"
    assert _raw_head(server, b"POST /v1/api/collect HTTP/1.1\r\n" + bad_key + many)[0] == 431
    with api_client(server, key["api_key"]) as http:
        page = wait_for(lambda: rejections(http), lambda p: len(p["rejections"]) >= 2)
        rows = wait_for(
            lambda: delivery(http, group_by="route"),
            lambda found: sum(sum(row["rejected"].values()) for row in found) >= 2,
        )
    kept = {row["request_id"]: row for row in page["rejections"]}
    assert set(kept) == {"head-431", slow[1]}
    assert (kept["head-431"]["route"], kept["head-431"]["status"]) == ("collect", 431)
    assert kept["head-431"]["code"] == "request_header_fields_too_large"
    assert kept["head-431"]["key_id"] == key["key_id"]
    assert kept["head-431"]["body"] == ""
    assert (kept[slow[1]]["route"], kept[slow[1]]["status"]) == ("conversion_batch", 408)
    assert kept[slow[1]]["code"] == "request_timeout"
    assert {row["route"]: row["rejected"] for row in rows} == {
        "collect": {"request_header_fields_too_large": 1},
        "conversion_batch": {"request_timeout": 1},
    }


def test_a_gzip_body_is_kept_as_sent_once_inflated(server: ServerProcess, partner: str) -> None:
    key = create_key(server.database_url, partner, "gzip")
    with api_client(server, key["api_key"]) as http:
        answer = http.post(
            "/v1/api/collect",
            content=gzip.compress(b'{"event_name": 7}', mtime=0),
            headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
        )
        assert answer.status_code == 422
        page = wait_for(lambda: rejections(http), lambda p: len(p["rejections"]) >= 1)
    assert page["rejections"][0]["body"] == '{"event_name": 7}'


def test_a_429_is_counted_per_key_and_minute_not_kept(server: ServerProcess, partner: str) -> None:
    key = create_key(server.database_url, partner, "limited", "--rate-limit", "1")
    reader = create_key(server.database_url, partner, "reader")
    with api_client(server, key["api_key"]) as http, api_client(server, reader["api_key"]) as read:
        codes = [
            http.post("/v1/api/collect", json={"event_name": "x"}).status_code for _ in range(6)
        ]
        limited = codes.count(429)
        assert limited >= 1
        page = wait_for(
            lambda: rejections(read),
            lambda p: sum(item["count"] for item in p["rate_limited"]) >= limited,
        )
    assert page["rejections"] == []
    assert sum(item["count"] for item in page["rate_limited"]) == limited
    assert {item["key_id"] for item in page["rate_limited"]} == {key["key_id"]}
    assert all(len(item["minute"]) == 16 for item in page["rate_limited"])


def test_under_a_flood_at_most_100_a_second_per_key_are_kept_and_the_rest_counted(
    server: ServerProcess, partner: str
) -> None:
    key = create_key(server.database_url, partner, "flood", "--rate-limit", "100000")
    sent = 400
    with api_client(server, key["api_key"]) as http:

        def refused(_: int) -> int:
            return http.post("/v1/api/collect", content=b"{").status_code

        with ThreadPoolExecutor(8) as pool:
            assert set(pool.map(refused, range(sent))) == {400}
        page = wait_for(
            lambda: rejections(http), lambda p: len(p["rejections"]) + p["not_kept"] >= sent
        )
        rows = delivery(http, group_by="route")
    per_second = Counter(row["received_at"][:19] for row in page["rejections"])
    assert max(per_second.values()) <= 100
    assert len(page["rejections"]) + page["not_kept"] == sent
    # 400 requests from 8 threads come faster than 100 a second: the bound was reached.
    assert max(per_second.values()) == 100
    assert page["not_kept"] > 0
    # Every refusal is counted, kept or not.
    assert [(row["route"], row["rejected"]) for row in rows] == [
        ("collect", {"invalid_json": sent})
    ]


def test_a_key_sees_its_own_partners_rejections_and_the_admin_every_partners(
    server: ServerProcess, partner: str
) -> None:
    acme = create_key(server.database_url, partner, "a")
    other = create_key(server.database_url, unique_name("other"), "o")
    both = (acme["partner_id"], other["partner_id"])

    def of_both(page: dict[str, Any]) -> list[str]:
        """The partners of the page's rows of this test's two partners (the module's other
        tests' partners have rows of their own)."""
        return sorted(row["partner_id"] for row in page["rejections"] if row["partner_id"] in both)

    with api_client(server, acme["api_key"]) as a, api_client(server, other["api_key"]) as o:
        assert a.post("/v1/api/collect", json={"event_name": 1}).status_code == 422
        assert o.post("/v1/api/collect", content=b"[").status_code == 400
        # Refused before a key is known: not kept, not counted.
        with api_client(server, "thr_" + "x" * 43) as unknown:
            assert unknown.post("/v1/api/collect", content=b"[").status_code == 401
        with api_client(server, ADMIN_TOKEN) as admin:
            everything = wait_for(lambda: rejections(admin), lambda p: len(of_both(p)) >= 2)
            only_other = rejections(admin, partner_id=other["partner_id"])
        mine = rejections(a)
        theirs = a.get("/v1/api/rejections", params={"partner_id": other["partner_id"]})
        assert theirs.status_code == 403
        assert (
            a.get(
                "/v1/api/reports/delivery", params={"partner_id": other["partner_id"]}
            ).status_code
            == 403
        )
    assert [row["partner_id"] for row in mine["rejections"]] == [acme["partner_id"]]
    assert mine["partner_id"] == acme["partner_id"]
    assert of_both(everything) == sorted(both)
    assert [row["code"] for row in only_other["rejections"]] == ["invalid_json"]


def test_the_delivery_numbers_add_up_and_equal_the_stored_rows(
    server: ServerProcess, partner: str
) -> None:
    database_url = server.database_url
    key = create_key(database_url, partner, "mixed")
    slow = create_key(database_url, partner, "slow", "--rate-limit", "1")
    click_id = real_click(server)
    with api_client(server, key["api_key"]) as http, api_client(server, slow["api_key"]) as limited:
        for event_id in ("a", "b", "c", "a", "b"):  # 3 stored, 2 duplicates
            assert http.post("/v1/api/collect", json={"event_name": "v", "event_id": event_id})
        http.post("/v1/api/collect", content=b"nope")  # invalid_json
        http.post("/v1/api/collect", json={"event_name": []})  # validation_error
        http.post("/v1/api/conversion", json=_conversion(click_id, order_id="o1"))  # stored
        http.post("/v1/api/conversion", json=_conversion(click_id, order_id="o1"))  # duplicate
        http.post("/v1/api/conversion", json=_conversion(str(uuid.uuid4())))  # click_not_found
        batch = http.post(
            "/v1/api/collect/batch",
            json={"events": [{"event_name": "n", "event_id": "d"}, {"event_id": "a"}, {}]},
        )
        assert batch.json()["totals"] == {"ok": 1, "duplicate": 0, "error": 2}
        conversions = http.post(
            "/v1/api/conversion/batch",
            json={
                "conversions": [
                    _conversion(click_id, order_id="o2"),
                    _conversion(click_id, currency=5),
                ]
            },
        )
        assert conversions.json()["totals"] == {"ok": 1, "duplicate": 0, "error": 1}
        statuses = [
            limited.post("/v1/api/collect", json={"event_name": "l"}).status_code for _ in range(4)
        ]
        expected = {
            "collect": {
                "received": 7 + len(statuses),
                "stored": 3 + statuses.count(204),
                "duplicate": 2,
                "rejected": {"invalid_json": 1, "validation_error": 1},
                "rate_limited": statuses.count(429),
            },
            "collect_batch": {
                "received": 3,
                "stored": 1,
                "duplicate": 0,
                "rejected": {"missing_field": 2},
                "rate_limited": 0,
            },
            "conversion": {
                "received": 3,
                "stored": 1,
                "duplicate": 1,
                "rejected": {"click_not_found": 1},
                "rate_limited": 0,
            },
            "conversion_batch": {
                "received": 2,
                "stored": 1,
                "duplicate": 0,
                "rejected": {"validation_error": 1},
                "rate_limited": 0,
            },
        }

        def by_route() -> dict[str, dict[str, Any]]:
            rows = delivery(http, group_by="day,route")
            return {
                row["route"]: {k: v for k, v in row.items() if k in expected["collect"]}
                for row in rows
            }

        found = wait_for(by_route, lambda rows: rows == expected)
        days = delivery(http)
    assert found == expected
    for row in found.values():
        assert row["received"] == (
            row["stored"] + row["duplicate"] + sum(row["rejected"].values()) + row["rate_limited"]
        )
    # stored equals the rows in storage, and the day's totals are the routes' sums.
    events = export(database_url, "events", "--partner", partner)
    stored_conversions = export(database_url, "conversions", "--partner", partner)
    assert found["collect"]["stored"] + found["collect_batch"]["stored"] == len(events)
    assert found["conversion"]["stored"] + found["conversion_batch"]["stored"] == len(
        stored_conversions
    )
    assert len(days) == 1
    assert days[0]["received"] == sum(row["received"] for row in found.values())
    assert days[0]["partner_id"] == key["partner_id"]
    table = cli(
        database_url, "report", "delivery", "--group-by", "route", "--partner", partner, "--json"
    )
    assert {row["route"]: row["received"] for row in json.loads(table)["rows"]} == {
        route: row["received"] for route, row in found.items()
    }
    # CSV: each rejection code a column of its own.
    delivery_csv = cli(
        database_url, "report", "delivery", "--group-by", "route", "--partner", partner, "--csv"
    )
    as_csv = list(csv.DictReader(io.StringIO(delivery_csv)))
    assert {row["route"]: int(row["received"]) for row in as_csv} == {
        route: row["received"] for route, row in found.items()
    }
    assert {row["route"]: int(row["rejected.click_not_found"]) for row in as_csv} == {
        route: row["rejected"].get("click_not_found", 0) for route, row in found.items()
    }


def test_the_delivery_report_refuses_what_it_does_not_know(server: ServerProcess) -> None:
    with api_client(server, ADMIN_TOKEN) as admin:
        for params in ({"group_by": "tag_id"}, {"since": "soon"}, {"limit": "5"}):
            answer = admin.get("/v1/api/reports/delivery", params=params)
            assert answer.status_code == 422
            assert answer.json()["error"]["code"] == "validation_error"
        answer = admin.get("/v1/api/rejections", params={"limit": "100000"})
        assert answer.status_code == 422
        assert answer.json()["error"]["details"][0]["field"] == "limit"
    assert httpx.get(f"{server.base_url}/v1/api/rejections").status_code == 401


def _insert_rejection(database_url: str, received_at: datetime, request_id: str) -> None:
    values = (
        "ptn_old",
        "key_old",
        "collect",
        422,
        "validation_error",
        "m",
        "[]",
        request_id,
        "{}",
    )
    sql = (
        "INSERT INTO rejections (received_at, partner_id, key_id, route, status, code, message, "
        "details, request_id, body) VALUES ({})"
    )
    if database_url.startswith("sqlite:///"):
        with sqlite3.connect(database_url.removeprefix("sqlite:///")) as conn:
            stamp = received_at.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
            conn.execute(sql.format(", ".join("?" * 10)), (stamp, *values))
        return
    with psycopg.connect(database_url, autocommit=True) as pg:
        pg.execute(sql.format(", ".join(["%s"] * 10)), (received_at, *values))  # type: ignore[arg-type]


def test_rejections_past_the_retention_are_deleted(database_url: str, tmp_path: Path) -> None:
    cli(database_url, "migrate")
    now = datetime.now(UTC)
    _insert_rejection(database_url, now - timedelta(days=3), "old")
    _insert_rejection(database_url, now - timedelta(hours=1), "recent")
    env = {"THRAD_ADMIN_TOKEN": ADMIN_TOKEN, "THRAD_REJECTIONS_RETENTION_DAYS": "2"}
    with (
        running_server(database_url, tmp_path / "server.log", env=env) as process,
        api_client(process, ADMIN_TOKEN) as admin,
    ):
        page = wait_for(
            lambda: rejections(admin, since="2000-01-01"),
            lambda p: [r["request_id"] for r in p["rejections"]] == ["recent"],
        )
    assert [row["request_id"] for row in page["rejections"]] == ["recent"]
