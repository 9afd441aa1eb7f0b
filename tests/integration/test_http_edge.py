"""The HTTP edge through the real server process: head limits, slow and idle connections, the
connection cap, gzip bodies, 405s, trailing slashes, HEAD on click links.

Store-independent behaviour, so SQLite servers serve the module; a server error logged during a
test fails that test. Raw sockets where no HTTP client would send such bytes.
"""

from __future__ import annotations

import gzip
import json
import socket
import time
from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.integration.server import (
    ServerProcess,
    click_link,
    create_key,
    error_of,
    export,
)


@dataclass
class Edge:
    server: ServerProcess
    http: httpx.Client
    api_key: str


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
            yield Edge(server, http, key["api_key"])
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def no_server_errors(edge: Edge) -> Iterator[None]:
    with edge.server.logs_no_new_errors():
        yield


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
    assert said in error_of(answer, 400, "invalid_json")["message"]


def test_gzip_bomb_split_over_many_members_is_413(edge: Edge) -> None:
    """The inflated cap counts every member, not each one on its own."""
    member = gzip.compress(b" " * 200_000)
    body = gzip.compress(b'{"event_name": "page_view"}') + member * 10
    assert len(body) < 1024 * 1024
    error_of(
        edge.http.post("/v1/api/collect", content=body, headers=GZIP), 413, "payload_too_large"
    )


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
    error_of(answer, 405, "method_not_allowed")
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
    error_of(answer, 404, "not_found")
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


# -- raw sockets: answers read one at a time -------------------------------------------------------


def _answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """Read exactly one answer (status, headers, body), never a byte of what follows it, so
    that answers to pipelined requests can be read one after the other."""
    reader = sock.makefile("rb", buffering=0)  # unbuffered: nothing is read ahead
    status_line = reader.readline()
    assert status_line, "connection closed without an answer"
    headers = {}
    while (line := reader.readline()) not in (b"\r\n", b""):
        name, _, value = line.decode("latin-1").partition(":")
        headers[name.strip().lower()] = value.strip()
    body = b""
    while len(body) < int(headers.get("content-length", "0")):
        chunk = reader.read(int(headers["content-length"]) - len(body))
        assert chunk, "connection closed in the middle of the answer"
        body += chunk
    return int(status_line.split()[1]), headers, body


def _final_answer(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """An answer after which the server closes the connection at once."""
    answer = _answer(sock)
    sock.settimeout(2)
    assert sock.recv(1) == b"", "the connection stayed open after the answer"
    return answer


def _code(body: bytes) -> str:
    return str(json.loads(body)["error"]["code"])


def _collect_request(
    edge: Edge, extra: list[bytes], body: bytes = b'{"event_name": "page_view"}'
) -> bytes:
    lines = [
        b"POST /v1/api/collect HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Authorization: Bearer " + edge.api_key.encode(),
        b"Content-Length: %d" % len(body),
        *extra,
    ]
    return b"\r\n".join(lines) + b"\r\n\r\n" + body


def _send(edge: Edge, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """One request on a connection of its own; the answer is the last thing on it."""
    with socket.create_connection(("127.0.0.1", edge.server.port), timeout=10) as sock:
        sock.sendall(request)
        return _final_answer(sock)


# -- answers on one connection: each turn's writes leave together (http/coalesce.py) ---------------


def test_pipelined_requests_are_answered_whole_and_in_order(edge: Edge) -> None:
    """Three requests in one packet: a refusal, an accepted event, a refusal. Each answer is
    whole (head and body), in the order of the requests, with the request id it was sent."""
    bodies = [b'{"event_name": 5}', b'{"event_name": "page_view"}', b'{"event_id": 7}']
    requests = [
        _collect_request(edge, [b"X-Request-ID: pipelined-%d" % n], body)
        for n, body in enumerate(bodies)
    ]
    with socket.create_connection(("127.0.0.1", edge.server.port), timeout=10) as sock:
        sock.sendall(b"".join(requests))
        answers = [_answer(sock) for _ in requests]
    assert [(status, headers["x-request-id"]) for status, headers, _ in answers] == [
        (422, "pipelined-0"),
        (204, "pipelined-1"),
        (400, "pipelined-2"),
    ]
    assert [_code(body) for _, _, body in (answers[0], answers[2])] == [
        "validation_error",
        "missing_field",
    ]


def test_expect_100_continue_gets_its_interim_answer_before_the_body_is_sent(
    edge: Edge,
) -> None:
    body = b'{"event_name": "page_view"}'
    head, _, _ = _collect_request(edge, [b"Expect: 100-continue"], body).partition(b"\r\n\r\n")
    with socket.create_connection(("127.0.0.1", edge.server.port), timeout=10) as sock:
        sock.sendall(head + b"\r\n\r\n")
        assert _answer(sock)[0] == 100
        sock.sendall(body)
        status, _, answer = _answer(sock)
    assert status == 204, answer


# -- head limits: 64 KiB and 100 header lines ---------------------------------------------------


def test_a_hundred_header_lines_are_served(edge: Edge) -> None:
    filler = [b"X-Filler-%d: v" % i for i in range(97)]  # with Host, Authorization, Length
    with socket.create_connection(("127.0.0.1", edge.server.port), timeout=10) as sock:
        sock.sendall(_collect_request(edge, filler))
        status, _, body = _answer(sock)
    assert status == 204, body


def test_a_hundred_and_one_header_lines_are_431_and_closed(edge: Edge) -> None:
    filler = [b"X-Filler-%d: v" % i for i in range(98)]
    status, headers, body = _send(edge, _collect_request(edge, filler))
    assert status == 431
    assert headers["content-type"] == "application/json"
    assert _code(body) == "request_header_fields_too_large"


def test_a_million_header_lines_are_refused_early(edge: Edge) -> None:
    """Refused at line 101, not after reading them all."""
    with socket.create_connection(("127.0.0.1", edge.server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/api/collect HTTP/1.1\r\nHost: x\r\n" + b"A: b\r\n" * 200)
        status, _, body = _final_answer(sock)
    assert (status, _code(body)) == (431, "request_header_fields_too_large")


@pytest.mark.parametrize(
    "extra",
    [
        [b"Authorization: Bearer " + b"x" * (64 * 1024)],
        [b"X-Filler-%d: " % i + b"v" * 1000 for i in range(70)],
    ],
    ids=["one 64 KiB header", "70 KB over 70 headers"],
)
def test_a_head_over_64_kib_is_431(edge: Edge, extra: list[bytes]) -> None:
    """Before the 401 of an unknown key: the key is not even looked at."""
    status, _, body = _send(edge, _collect_request(edge, extra))
    assert (status, _code(body)) == (431, "request_header_fields_too_large")


def test_a_url_over_64_kib_is_431(edge: Edge) -> None:
    request = b"GET /healthz?" + b"q" * (64 * 1024) + b" HTTP/1.1\r\nHost: x\r\n\r\n"
    status, _, body = _send(edge, request)
    assert (status, _code(body)) == (431, "request_header_fields_too_large")


def test_an_endless_header_line_is_cut_off_at_the_cap(edge: Edge) -> None:
    """A header line that never ends is refused once the cap is read, not buffered on."""
    with socket.create_connection(("127.0.0.1", edge.server.port), timeout=10) as sock:
        sock.sendall(b"POST /v1/api/collect HTTP/1.1\r\nHost: x\r\nX-Big: ")
        sent = 0
        sock.settimeout(0.05)
        answer = b""
        while sent < 50_000_000 and not answer:
            try:
                sent += sock.send(b"a" * 16384)
                answer = sock.recv(65536, socket.MSG_PEEK)
            except TimeoutError:
                continue
            except (BlockingIOError, ConnectionError):
                break
        sock.settimeout(10)
        status, _, body = _final_answer(sock)
    assert (status, _code(body)) == (431, "request_header_fields_too_large")
    assert sent < 50_000_000


# -- slow and idle connections, the connection cap ------------------------------------------------

HEADER_TIMEOUT_S = 1
KEEPALIVE_TIMEOUT_S = 2
MAX_CONNECTIONS = 3


@pytest.fixture(scope="module")
def strict(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """A server with short timeouts and a small connection cap, for raw sockets only."""
    tmp = tmp_path_factory.mktemp("strict")
    server = ServerProcess(
        f"sqlite:///{tmp / 'thrad.db'}",
        tmp / "server.log",
        env={
            "THRAD_HEADER_TIMEOUT_S": str(HEADER_TIMEOUT_S),
            "THRAD_KEEPALIVE_TIMEOUT_S": str(KEEPALIVE_TIMEOUT_S),
            "THRAD_MAX_CONNECTIONS": str(MAX_CONNECTIONS),
        },
    )
    try:
        yield server
    finally:
        server.stop()
    errors = server.error_lines()
    assert not errors, "server logged errors:\n" + "\n".join(errors)


def _connect(server: ServerProcess) -> socket.socket:
    return socket.create_connection(("127.0.0.1", server.port), timeout=10)


def test_a_connection_that_sends_nothing_is_closed_after_the_keepalive_timeout(
    strict: ServerProcess,
) -> None:
    started = time.monotonic()
    with _connect(strict) as sock:
        assert sock.recv(100) == b""  # closed without an answer: there was no request
    assert KEEPALIVE_TIMEOUT_S - 0.5 < time.monotonic() - started < KEEPALIVE_TIMEOUT_S + 3


def _assert_408_soon(sock: socket.socket, started: float) -> None:
    status, headers, body = _final_answer(sock)
    assert (status, _code(body)) == (408, "request_timeout")
    assert headers["content-type"] == "application/json"
    assert time.monotonic() - started < HEADER_TIMEOUT_S + 3


def test_a_request_line_left_unfinished_gets_408(strict: ServerProcess) -> None:
    started = time.monotonic()
    with _connect(strict) as sock:
        sock.sendall(b"POST /v1/api/col")
        _assert_408_soon(sock, started)


def test_headers_trickled_a_line_at_a_time_get_408_within_the_header_timeout(
    strict: ServerProcess,
) -> None:
    """Slowloris: each line arrives in time, the whole head does not."""
    started = time.monotonic()
    with _connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        for i in range(40):
            time.sleep(0.25)
            try:
                sock.sendall(b"X-Slow-%d: 1\r\n" % i)
            except OSError:
                break  # the server answered and closed while lines still came
        _assert_408_soon(sock, started)


def test_the_header_timeout_counts_again_from_the_previous_response(
    strict: ServerProcess,
) -> None:
    with _connect(strict) as sock:
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
        assert _answer(sock)[0] == 200
        started = time.monotonic()
        sock.sendall(b"GET /healthz HTTP/1.1\r\nHo")
        _assert_408_soon(sock, started)


def test_past_the_connection_cap_a_request_gets_503_json_with_retry_after(
    strict: ServerProcess,
) -> None:
    held = [_connect(strict) for _ in range(MAX_CONNECTIONS)]
    try:
        for sock in held:  # each answered once: the server has accepted all of them
            sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            assert _answer(sock)[0] == 200
        with _connect(strict) as extra:
            extra.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            status, headers, body = _final_answer(extra)
        assert (status, _code(body)) == (503, "unavailable")
        assert headers["retry-after"] == "1"
    finally:
        for sock in held:
            sock.close()
    deadline = time.monotonic() + 5
    while True:  # the cap frees as connections close
        with _connect(strict) as again:
            again.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")
            if _answer(again)[0] == 200 or time.monotonic() > deadline:
                break
        time.sleep(0.05)
    assert time.monotonic() <= deadline
