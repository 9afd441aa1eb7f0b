"""The HTTP edge through the real server process: gzip bodies, 405s, trailing slashes, HEAD.

Store-independent behaviour, so one SQLite server serves the module; a server error logged
during a test fails that test.
"""

from __future__ import annotations

import gzip
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.integration.server import ServerProcess, click_link, create_key, export


@dataclass
class Edge:
    server: ServerProcess
    http: httpx.Client


@pytest.fixture(scope="module")
def edge(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Edge]:
    tmp = tmp_path_factory.mktemp("edge")
    server = ServerProcess(f"sqlite:///{tmp / 'thrad.db'}", tmp / "server.log")
    try:
        key = create_key(server.database_url, "edge", "edge", "--rate-limit", "100000")
        with httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {key['api_key']}"},
            timeout=10,
        ) as http:
            yield Edge(server, http)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def no_server_errors(edge: Edge) -> Iterator[None]:
    before = len(edge.server.error_lines())
    yield
    errors = edge.server.error_lines()[before:]
    assert not errors, "server logged errors:\n" + "\n".join(errors)


def _error(answer: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert answer.status_code == status, answer.text[:300]
    assert answer.headers["content-type"] == "application/json"
    error: dict[str, Any] = answer.json()["error"]
    assert error["code"] == code, error
    return error


GZIP = {"Content-Encoding": "gzip", "Content-Type": "application/json"}


# -- gzip ----------------------------------------------------------------------------------------


def test_two_concatenated_gzip_members_inflate_to_one_body(edge: Edge) -> None:
    """RFC 1952: a gzip file may be several members; the body is all of them, in order."""
    body = json.dumps({"event_name": "two_members", "event_id": "gz-members"}).encode()
    half = len(body) // 2
    answer = edge.http.post(
        "/v1/api/collect",
        content=gzip.compress(body[:half]) + gzip.compress(body[half:]),
        headers=GZIP,
    )
    assert answer.status_code == 204, answer.text
    stored = [
        e for e in export(edge.server.database_url, "events") if e["event_id"] == "gz-members"
    ]
    assert [e["event_name"] for e in stored] == ["two_members"]


@pytest.mark.parametrize(
    ("junk", "said"),
    [(b"junk", "trailing bytes"), (b"\x00", "trailing bytes"), (b"\x1f\x8b", "truncated")],
    ids=repr,
)
def test_gzip_followed_by_trailing_bytes_is_400(edge: Edge, junk: bytes, said: str) -> None:
    """Bytes after the last member are not silently dropped: the body is refused."""
    body = gzip.compress(b'{"event_name": "page_view"}') + junk
    answer = edge.http.post("/v1/api/collect", content=body, headers=GZIP)
    assert said in _error(answer, 400, "invalid_json")["message"]


def test_gzip_bomb_split_over_many_members_is_413(edge: Edge) -> None:
    """The inflated cap counts every member, not each one on its own."""
    member = gzip.compress(b" " * 200_000)
    body = gzip.compress(b'{"event_name": "page_view"}') + member * 10
    assert len(body) < 1024 * 1024
    _error(edge.http.post("/v1/api/collect", content=body, headers=GZIP), 413, "payload_too_large")


# -- 405 ------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("GET", "/v1/api/collect", {"POST"}),
        ("PUT", "/api/conversion", {"POST"}),
        ("DELETE", "/v1/api/collect/batch", {"POST"}),
        ("POST", "/v1/click", {"GET", "HEAD"}),
        ("POST", "/healthz", {"GET", "HEAD"}),
        ("PATCH", "/v1/api/reports/events", {"GET", "HEAD"}),
    ],
)
def test_405_names_the_allowed_methods(
    edge: Edge, method: str, path: str, allowed: set[str]
) -> None:
    """RFC 9110 15.5.6: a 405 carries Allow, listing the methods the path takes."""
    answer = edge.http.request(method, path, content=b"{}")
    _error(answer, 405, "method_not_allowed")
    assert {m.strip() for m in answer.headers["allow"].split(",")} == allowed


# -- trailing slash ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [("POST", "/v1/api/collect/"), ("POST", "/api/conversion/"), ("GET", "/healthz/")],
)
def test_trailing_slash_is_a_json_404_never_a_redirect_to_the_host_header(
    edge: Edge, method: str, path: str
) -> None:
    """A redirect built from Host would send the event to any host the client names."""
    answer = edge.http.request(
        method, path, json={"event_name": "page_view"}, headers={"Host": "evil.example"}
    )
    _error(answer, 404, "not_found")
    assert "location" not in answer.headers


# -- HEAD on a click link ------------------------------------------------------------------------


def test_head_on_a_click_link_redirects_to_the_landing_url_and_stores_no_click(edge: Edge) -> None:
    """Link unfurlers and mail scanners send HEAD: their probes must not count as clicks."""
    landing = "https://shop.example.com/p/42?ref=chat#top"
    link = click_link(edge.server.database_url, edge.server.base_url, landing)
    before = len(export(edge.server.database_url, "clicks"))
    answer = httpx.head(link, follow_redirects=False, timeout=10)
    assert answer.status_code == 302
    assert answer.headers["location"] == landing  # no click, so no thrad_click_id to give
    assert answer.headers["cache-control"] == "no-store"
    assert len(export(edge.server.database_url, "clicks")) == before
    followed = httpx.get(link, follow_redirects=False, timeout=10)
    assert "thrad_click_id=" in followed.headers["location"]
    assert len(export(edge.server.database_url, "clicks")) == before + 1


def test_head_on_a_tampered_click_link_is_400_like_the_get(edge: Edge) -> None:
    link = click_link(edge.server.database_url, edge.server.base_url)
    tampered = link.replace("sig=", "sig=0")
    answer = httpx.head(tampered, follow_redirects=False, timeout=10)
    assert answer.status_code == 400
    assert "location" not in answer.headers
