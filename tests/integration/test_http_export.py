"""GET /v1/api/export/events|conversions: a partner's own rows over HTTP, in cursor pages.

Each test makes partners of its own (unique names), so the module's one server (per store)
serves them all; the export window is set to end now (THRAD_EXPORT_SETTLE_S=0) so that rows
are exported as soon as they are acknowledged.
"""

from __future__ import annotations

import csv
import io
import json
import socket
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server import (
    ServerProcess,
    api_client,
    create_key,
    error_of,
    export,
    real_click,
    running_server,
    unique_name,
)

ADMIN_TOKEN = "export-admin-token-0123456789"


@pytest.fixture(scope="module")
def export_server(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp: Path = tmp_path_factory.mktemp("export")
    with running_server(
        shared_database_url,
        tmp / "server.log",
        env={"THRAD_EXPORT_SETTLE_S": "0", "THRAD_ADMIN_TOKEN": ADMIN_TOKEN},
    ) as process:
        yield process


class Partner:
    def __init__(self, server: ServerProcess) -> None:
        self.name = unique_name("p")
        key = create_key(server.database_url, self.name, "export", "--rate-limit", "100000")
        self.partner_id: str = key["partner_id"]
        self.http = api_client(server, key["api_key"], timeout_s=30)

    def collect(self, count: int, **fields: Any) -> list[str]:
        ids = [f"{self.name}-{uuid.uuid4().hex[:8]}" for _ in range(count)]
        for start in range(0, count, 200):
            body = {
                "events": [
                    {"event_name": "page_view", "event_id": event_id, **fields}
                    for event_id in ids[start : start + 200]
                ]
            }
            answer = self.http.post("/v1/api/collect/batch", json=body)
            assert answer.status_code == 200, answer.text
            assert answer.json()["totals"]["ok"] == len(body["events"])
        return ids


@pytest.fixture
def partner(export_server: ServerProcess) -> Iterator[Partner]:
    with export_server.logs_no_new_errors():
        found = Partner(export_server)
        yield found
        found.http.close()


@pytest.fixture
def other(export_server: ServerProcess) -> Iterator[Partner]:
    found = Partner(export_server)
    yield found
    found.http.close()


@pytest.fixture
def admin(export_server: ServerProcess) -> Iterator[httpx.Client]:
    with api_client(export_server, ADMIN_TOKEN, timeout_s=30) as http:
        yield http


def jsonl(answer: httpx.Response) -> list[dict[str, Any]]:
    assert answer.status_code == 200, answer.text
    assert answer.headers["content-type"] == "application/x-ndjson"
    return [json.loads(line) for line in answer.text.splitlines()]


def all_pages(http: httpx.Client, url: str) -> tuple[list[dict[str, Any]], int]:
    """Every row, following each answer's Link rel=next; and how many pages it took."""
    rows: list[dict[str, Any]] = []
    pages = 0
    next_url: str | None = url
    while next_url is not None:
        answer = http.get(next_url)
        rows.extend(jsonl(answer))
        pages += 1
        link = answer.links.get("next")
        next_url = link["url"] if link else None
        if link:
            assert answer.headers["x-next-cursor"] in link["url"]
    return rows, pages


def test_a_partner_exports_its_own_rows_only(partner: Partner, other: Partner) -> None:
    """A partner's key reads only its partner's rows; naming another partner is a 403."""
    mine = partner.collect(3)
    other.collect(2)
    rows = jsonl(partner.http.get("/v1/api/export/events"))
    assert sorted(row["event_id"] for row in rows) == sorted(mine)
    assert {row["partner_id"] for row in rows} == {partner.partner_id}
    refused = partner.http.get(f"/v1/api/export/events?partner_id={other.partner_id}")
    assert refused.status_code == 403
    assert refused.json()["error"]["code"] == "forbidden"


def test_the_admin_token_exports_any_partner(
    partner: Partner, other: Partner, admin: httpx.Client
) -> None:
    partner.collect(1)
    theirs = other.collect(2)
    for name in ("partner_id", "partner"):
        for ref in (other.partner_id, other.name):
            rows = jsonl(admin.get(f"/v1/api/export/events?{name}={ref}"))
            assert sorted(row["event_id"] for row in rows) == sorted(theirs), (name, ref)
    everyone = {row["partner_id"] for row in jsonl(admin.get("/v1/api/export/events"))}
    assert {partner.partner_id, other.partner_id} <= everyone
    # No such partner: said so, not an empty export that looks like a partner with no rows.
    unknown = admin.get("/v1/api/export/events?partner=nobody-at-all")
    error = error_of(unknown, 422, "validation_error")
    assert error["details"] == [
        {"field": "partner_id", "message": "no partner has this id or name"}
    ]


def test_cursor_pages_return_every_row_exactly_once(partner: Partner) -> None:
    """limit=7 over 40 rows: six pages, each row once, in the order received."""
    ids = partner.collect(40)
    rows, pages = all_pages(partner.http, "/v1/api/export/events?limit=7")
    assert sorted(row["event_id"] for row in rows) == sorted(ids)
    assert len(rows) == len(ids)
    received = [row["received_at"] for row in rows]
    assert received == sorted(received)
    assert pages == 6


def test_rows_inserted_while_paging_neither_shift_nor_repeat_a_page(partner: Partner) -> None:
    """The export's window is fixed by its first page: rows stored meanwhile are left for the
    next export, and the pages still hold each earlier row once."""
    ids = partner.collect(12)
    first = partner.http.get("/v1/api/export/events?limit=5")
    rows = jsonl(first)
    late = partner.collect(6)
    rest, _ = all_pages(partner.http, first.links["next"]["url"])
    assert sorted(row["event_id"] for row in rows + rest) == sorted(ids)
    assert len(rows + rest) == len(ids)
    # The next export starts where the window ended and finds the late rows.
    since = first.headers["x-export-until"]
    later = jsonl(partner.http.get("/v1/api/export/events", params={"since": since}))
    assert sorted(row["event_id"] for row in later) == sorted(late)


def test_the_last_full_page_has_no_next_cursor(partner: Partner) -> None:
    partner.collect(4)
    answer = partner.http.get("/v1/api/export/events?limit=4")
    assert len(jsonl(answer)) == 4
    assert "x-next-cursor" not in answer.headers
    assert "link" not in answer.headers


def test_http_rows_are_the_cli_exports_rows(partner: Partner, export_server: ServerProcess) -> None:
    """The same fields, names and values as `thrad-events export`."""
    ids = set(partner.collect(2, params={"step": "shipping"}, page_url="https://a.example/?q=1"))
    over_http = jsonl(partner.http.get("/v1/api/export/events"))
    from_cli = [
        row
        for row in export(export_server.database_url, "events", "--partner", partner.partner_id)
        if row["event_id"] in ids
    ]
    assert over_http == from_cli


def test_csv_cells_that_could_be_formulas_are_neutralised(partner: Partner) -> None:
    """OWASP CSV injection: a client's `=HYPERLINK(...)` reaches the spreadsheet as text."""
    partner.collect(1, tag_id='=HYPERLINK("http://evil.example","x")', params={"n": "@SUM(1)"})
    answer = partner.http.get("/v1/api/export/events?format=csv")
    assert answer.status_code == 200
    assert answer.headers["content-type"] == "text/csv; charset=utf-8"
    [row] = list(csv.DictReader(io.StringIO(answer.text)))
    assert row["tag_id"] == '\'=HYPERLINK("http://evil.example","x")'
    assert row["event_name"] == "page_view"


def test_csv_pages_each_carry_the_header(partner: Partner) -> None:
    ids = partner.collect(5)
    first = partner.http.get("/v1/api/export/events?format=csv&limit=3")
    second = partner.http.get(first.links["next"]["url"])
    assert "format=csv" in first.links["next"]["url"]
    seen = [
        row["event_id"]
        for answer in (first, second)
        for row in csv.DictReader(io.StringIO(answer.text))
    ]
    assert sorted(seen) == sorted(ids)
    assert len(seen) == len(ids)


def test_conversions_export_with_exact_money(
    partner: Partner, export_server: ServerProcess
) -> None:
    click_id = real_click(export_server)
    for value in ("49.990", "-5.00"):
        body = (
            f'{{"click_id": "{click_id}", "conversion_time": "2026-02-19T18:00:00Z", '
            f'"conversion_value": {value}, "currency": "usd", "order_id": "o{value}"}}'
        )
        answer = partner.http.post(
            "/v1/api/conversion", content=body, headers={"Content-Type": "application/json"}
        )
        assert answer.json() == {"status": "ok"}, answer.text
    rows = jsonl(partner.http.get("/v1/api/export/conversions"))
    assert [row["conversion_value"] for row in rows] == ["49.990", "-5.00"]
    assert {row["currency"] for row in rows} == {"USD"}
    [_, minus] = list(
        csv.DictReader(io.StringIO(partner.http.get("/v1/api/export/conversions?format=csv").text))
    )
    assert minus["conversion_value"] == "-5.00"  # a plain number keeps its digits


@pytest.mark.parametrize(
    ("query", "field"),
    [
        ("format=xml", "format"),
        ("since=yesterday", "since"),
        ("until=2026-13-01", "until"),
        ("since=2026-02-02&until=2026-02-01", "since"),
        ("limit=0", "limit"),
        ("limit=100001", "limit"),
        ("limit=1e3", "limit"),
        ("cursor=abc", "cursor"),
        ("cursor=" + "a" * 5000 + ".b", "cursor"),
        ("order=desc", "order"),
        ("format=csv&format=jsonl", "format"),
    ],
)
def test_bad_parameters_are_a_422_naming_them(partner: Partner, query: str, field: str) -> None:
    answer = partner.http.get(f"/v1/api/export/events?{query}")
    assert answer.status_code == 422, answer.text
    error = answer.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == field


def test_a_tampered_cursor_is_refused(partner: Partner) -> None:
    partner.collect(3)
    token = partner.http.get("/v1/api/export/events?limit=1").headers["x-next-cursor"]
    payload, mac = token.split(".")
    # A cursor naming another partner or window, re-encoded by the client, fails its MAC.
    for forged in (f"{payload[:-2]}AA.{mac}", f"{payload}.{mac[:-2]}AA", payload):
        answer = partner.http.get("/v1/api/export/events", params={"cursor": forged})
        assert answer.status_code == 422, answer.text
        assert answer.json()["error"]["details"][0]["field"] == "cursor"


def test_another_partners_cursor_reads_nothing(partner: Partner, other: Partner) -> None:
    """A cursor that leaked from one partner is no key to its rows for another."""
    other.collect(3)
    token = other.http.get("/v1/api/export/events?limit=1").headers["x-next-cursor"]
    answer = partner.http.get("/v1/api/export/events", params={"cursor": token})
    assert answer.status_code == 403
    assert answer.json()["error"]["details"][0]["field"] == "cursor"
    assert other.http.get("/v1/api/export/events", params={"cursor": token}).status_code == 200


def test_a_cursor_keeps_its_export_and_window(partner: Partner) -> None:
    partner.collect(3)
    token = partner.http.get("/v1/api/export/events?limit=1").headers["x-next-cursor"]
    wrong_table = partner.http.get("/v1/api/export/conversions", params={"cursor": token})
    assert wrong_table.status_code == 422
    assert "events export" in wrong_table.json()["error"]["message"]
    with_since = partner.http.get(
        "/v1/api/export/events", params={"cursor": token, "since": "2026-01-01"}
    )
    assert with_since.status_code == 422
    assert with_since.json()["error"]["details"][0]["field"] == "since"


def test_without_a_valid_key_nothing_is_exported(export_server: ServerProcess) -> None:
    for headers in ({}, {"Authorization": "Bearer thr_nope"}):
        answer = httpx.get(f"{export_server.base_url}/v1/api/export/events", headers=headers)
        assert answer.status_code == 401
        assert answer.headers["www-authenticate"].startswith("Bearer")


def test_clients_that_go_away_mid_page_free_their_export_threads(
    partner: Partner, export_server: ServerProcess
) -> None:
    """More clients than a worker has export threads each start a page too big for the
    socket buffers and hang up; each page's thread stops, so a later export is served."""
    partner.collect(3000, params={"pad": "x" * 4000})
    key = partner.http.headers["Authorization"]
    request = (
        "GET /v1/api/export/events?limit=100000 HTTP/1.1\r\n"
        f"Host: x\r\nAuthorization: {key}\r\n\r\n"
    ).encode()
    for _ in range(6):
        with socket.socket() as sock:
            # A small receive window: the server's sends back up after a few KiB.
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
            sock.connect(("127.0.0.1", export_server.port))
            sock.sendall(request)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
    rows, _ = all_pages(partner.http, "/v1/api/export/events?limit=100000")
    assert len(rows) == 3000
