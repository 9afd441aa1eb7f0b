"""Hostile bodies, headers and click links through the real server process.

Contract: "Never a 500 with a stack trace for anything a client can send"; errors are JSON
`{"error": {"code", "message", "details"}}` with the status of the error table. Each input here
gets that clear 4xx (or the normal answer where the input is in fact valid): never a 5xx, a
hang, or a connection dropped without an answer. One server serves the whole module; a server
error logged during a test fails that test.
"""

from __future__ import annotations

import dataclasses
import json
import socket
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlencode

import httpx
import pytest

from tests.integration.conftest import STORES
from tests.integration.server import ServerProcess, create_key, export
from tests.postgres import postgres_schema
from thrad_events.ingest import clicklinks
from thrad_events.ingest.json_bounds import MAX_JSON_DEPTH

SECRET = "hostile-test-click-secret-0123456789"
COLLECT = "/v1/api/collect"
CONVERSION = "/v1/api/conversion"
MEGABYTE = 1_000_000  # characters: the body stays under the 1 MiB limit
BIG = "1" * 400


@dataclass
class Target:
    server: ServerProcess
    api_key: str
    http: httpx.Client
    click_id: str


@pytest.fixture(scope="module", params=STORES)
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[str]:
    """The whole corpus on each store: what one stores without complaint, the other may not."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path_factory.mktemp('hostile') / 'thrad.db'}"
        return
    with postgres_schema() as url:
        yield url


@pytest.fixture(scope="module")
def target(database: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    log_path = tmp_path_factory.mktemp("hostile-log") / "server.log"
    server = ServerProcess(database, log_path, env={"THRAD_CLICK_SECRET": SECRET})
    database_url = database
    try:
        key = create_key(database_url, "hostile", "hostile", "--rate-limit", "1000000")
        with httpx.Client(
            base_url=server.base_url,
            headers={"Authorization": f"Bearer {key['api_key']}"},
            timeout=15,
        ) as http:
            landing = http.get(_click_path({"url": "https://shop.example.com/"}))
            click_id = httpx.URL(landing.headers["location"]).params["thrad_click_id"]
            yield Target(server, key["api_key"], http, click_id)
    finally:
        server.stop()


@pytest.fixture(autouse=True)
def no_server_errors(target: Target) -> Iterator[None]:
    """A server error logged while a test ran fails that test (as the `server` fixture does)."""
    with target.server.logs_no_new_errors():
        yield


def _mac(fields: dict[str, str]) -> str:
    # Signed without sign_link's checks, so that even links the CLI refuses to sign
    # (javascript:, CR/LF) reach the server's own checks.
    return clicklinks._mac(SECRET, clicklinks._canonical(fields))


def _click_path(fields: dict[str, str], **extra: str) -> str:
    return "/v1/click?" + urlencode({**fields, "sig": _mac(fields), **extra})


def assert_error(
    answer: httpx.Response, status: int, code: str, field: str | None = None
) -> dict[str, Any]:
    """A clear JSON error: the status, the code, a message, and the field when one is at fault."""
    assert answer.status_code == status, answer.text[:500]
    assert answer.headers["content-type"].startswith("application/json")
    error: dict[str, Any] = answer.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    if field is not None:
        assert field in [d["field"] for d in error["details"]], error
    return error


@dataclass(frozen=True)
class Case:
    name: str
    path: str
    body: bytes
    status: int
    code: str | None = None
    field: str | None = None
    headers: dict[str, str] = dataclasses.field(default_factory=dict)


def _collect(**fields: Any) -> bytes:
    return json.dumps({"event_name": "page_view", **fields}).encode()


# "CLICK" is replaced by a real click id when the request is sent.
CONVERSION_TEMPLATE = {
    "click_id": "CLICK",
    "conversion_time": "2026-02-19T18:00:00Z",
    "conversion_value": 49.99,
    "currency": "USD",
}


def _conversion(**fields: Any) -> bytes:
    return json.dumps({**CONVERSION_TEMPLATE, **fields}).encode()


def _raw_collect(fragment: str) -> bytes:
    """A collect body with `fragment` (raw JSON text) spliced in as extra members."""
    return ('{"event_name": "page_view", ' + fragment + "}").encode()


def _raw_conversion(fragment: str) -> bytes:
    """A conversion body with `fragment` (raw JSON members) in place of the template's own."""
    template = {k: v for k, v in CONVERSION_TEMPLATE.items() if f'"{k}":' not in fragment}
    return ("{" + fragment + ", " + json.dumps(template)[1:]).encode()


def _deep(levels: int, kind: str = "[") -> str:
    if kind == "[":
        return "[" * levels + "]" * levels
    return '{"a": ' * levels + "1" + "}" * levels


COLLECT_STRINGS = (
    "event_name",
    "tag_id",
    "event_id",
    "page_url",
    "referrer",
    "user_agent",
    "channel",
    "session_id",
    "client_id",
    "attribution_type",
    "impression_id",
    "click_id",
    "bid_id",
    "impression_state",
    "client_ip",
)
CONVERSION_STRINGS = (
    "click_id",
    "conversion_time",
    "currency",
    "event_type",
    "order_id",
    "event_id",
    "page_url",
    "referrer",
    "user_agent",
    "channel",
    "session_id",
    "client_id",
    "tag_id",
    "client_ip",
)

CASES = [
    # Not UTF-8, not JSON, not an object.
    Case("invalid utf-8 in a string", COLLECT, b'{"event_name": "\xff\xfe"}', 400, "invalid_json"),
    Case("invalid utf-8 in a key", COLLECT, b'{"event_name": "a", "\xc3": 1}', 400, "invalid_json"),
    Case("empty body", COLLECT, b"", 400, "invalid_json"),
    Case("whitespace only", COLLECT, b" \r\n\t  ", 400, "invalid_json"),
    Case("byte order mark", COLLECT, b"\xef\xbb\xbf" + _collect(), 400, "invalid_json"),
    Case("a JSON string", COLLECT, b'"page_view"', 400, "invalid_json"),
    Case("JSON null", CONVERSION, b"null", 400, "invalid_json"),
    Case("an array", CONVERSION, b"[]", 400, "invalid_json"),
    Case("truncated", CONVERSION, _conversion()[:-5], 400, "invalid_json"),
    Case("form encoded", COLLECT, b"event_name=page_view", 400, "invalid_json"),
    # NaN and the infinities are not JSON.
    *(
        Case(f"{literal} as {name}", path, body, 400, "invalid_json")
        for literal in ("NaN", "Infinity", "-Infinity")
        for name, path, body in (
            ("timestamp", COLLECT, _raw_collect(f'"timestamp": {literal}')),
            ("view_time_ms", COLLECT, _raw_collect(f'"view_time_ms": {literal}')),
            ("a param", COLLECT, _raw_collect(f'"params": {{"v": {literal}}}')),
            ("conversion_value", CONVERSION, _raw_conversion(f'"conversion_value": {literal}')),
        )
    ),
    # 400-digit numbers.
    Case(
        "400-digit timestamp",
        COLLECT,
        _raw_collect(f'"timestamp": {BIG}'),
        422,
        "validation_error",
        "timestamp",
    ),
    Case(
        "negative 400-digit timestamp",
        COLLECT,
        _raw_collect(f'"timestamp": -{BIG}'),
        422,
        "validation_error",
        "timestamp",
    ),
    Case(
        "400-digit float timestamp",
        COLLECT,
        _raw_collect(f'"timestamp": {BIG}.5'),
        422,
        "validation_error",
        "timestamp",
    ),
    Case(
        "400-digit view_time_ms",
        COLLECT,
        _raw_collect(f'"view_time_ms": {BIG}'),
        422,
        "validation_error",
        "view_time_ms",
    ),
    Case(
        "400-digit conversion_value",
        CONVERSION,
        _raw_conversion(f'"conversion_value": {BIG}'),
        422,
        "validation_error",
        "conversion_value",
    ),
    Case(
        "1e400 conversion_value",
        CONVERSION,
        _raw_conversion('"conversion_value": 1e400'),
        422,
        "validation_error",
        "conversion_value",
    ),
    Case(
        "400-digit float in params",
        COLLECT,
        _raw_collect(f'"params": {{"v": {BIG}.5}}'),
        422,
        "validation_error",
    ),
    Case("400-digit integer in params", COLLECT, _raw_collect(f'"params": {{"v": {BIG}}}'), 204),
    Case(
        "400-digit integer in consent", COLLECT, _raw_collect(f'"consent": {{"v": [{BIG}]}}'), 204
    ),
    # Timestamps of every odd shape.
    Case(
        "negative timestamp", COLLECT, _collect(timestamp=-1), 422, "validation_error", "timestamp"
    ),
    Case(
        "huge timestamp", COLLECT, _collect(timestamp=10**30), 422, "validation_error", "timestamp"
    ),
    Case(
        "1e300 timestamp",
        COLLECT,
        _raw_collect('"timestamp": 1e300'),
        422,
        "validation_error",
        "timestamp",
    ),
    Case("float timestamp", COLLECT, _collect(timestamp=1771879200.7), 204),
    Case("tiny float timestamp", COLLECT, _raw_collect('"timestamp": 1e-300'), 204),
    Case(
        '"NaN" timestamp', COLLECT, _collect(timestamp="NaN"), 422, "validation_error", "timestamp"
    ),
    Case(
        "string timestamp",
        COLLECT,
        _collect(timestamp="1771879200"),
        422,
        "validation_error",
        "timestamp",
    ),
    Case("bool timestamp", COLLECT, _collect(timestamp=True), 422, "validation_error", "timestamp"),
    # conversion_value must be a finite JSON number.
    Case(
        "conversion_value true",
        CONVERSION,
        _conversion(conversion_value=True),
        422,
        "validation_error",
        "conversion_value",
    ),
    Case(
        'conversion_value "1"',
        CONVERSION,
        _conversion(conversion_value="1"),
        422,
        "validation_error",
        "conversion_value",
    ),
    Case(
        "conversion_value []",
        CONVERSION,
        _conversion(conversion_value=[]),
        422,
        "validation_error",
        "conversion_value",
    ),
    Case(
        "conversion_value {}",
        CONVERSION,
        _conversion(conversion_value={}),
        422,
        "validation_error",
        "conversion_value",
    ),
    Case(
        "conversion_value null",
        CONVERSION,
        _conversion(conversion_value=None),
        400,
        "missing_field",
        "conversion_value",
    ),
    # conversion_time at the edges of what a datetime can hold.
    Case(
        "conversion_time before year 1 in UTC",
        CONVERSION,
        _conversion(conversion_time="0001-01-01T00:00:00+05:00"),
        422,
        "validation_error",
        "conversion_time",
    ),
    Case(
        "conversion_time after 9999 in UTC",
        CONVERSION,
        _conversion(conversion_time="9999-12-31T23:59:59-05:00"),
        422,
        "validation_error",
        "conversion_time",
    ),
    Case(
        "conversion_time with a NUL",
        CONVERSION,
        _conversion(conversion_time="2026-02-19T18:00:00\x00"),
        422,
        "validation_error",
        "conversion_time",
    ),
    # Deep nesting: refused, naming the field, before anything recurses without bound.
    Case(
        "10,000-deep arrays in params",
        COLLECT,
        _raw_collect(f'"params": {{"v": {_deep(10_000)}}}'),
        422,
        "validation_error",
        "params",
    ),
    Case(
        "10,000-deep objects as params",
        COLLECT,
        _raw_collect(f'"params": {_deep(10_000, "{")}'),
        422,
        "validation_error",
        "params",
    ),
    Case(
        "10,000-deep consent",
        COLLECT,
        _raw_collect(f'"consent": {{"v": {_deep(10_000)}}}'),
        422,
        "validation_error",
        "consent",
    ),
    Case(
        "10,000-deep unknown field",
        COLLECT,
        _raw_collect(f'"extra": {_deep(10_000)}'),
        422,
        "validation_error",
        "extra",
    ),
    Case("10,000-deep array body", COLLECT, _deep(10_000).encode(), 400, "invalid_json"),
    Case(
        "10,000-deep object body",
        COLLECT,
        _deep(10_000, "{").encode(),
        422,
        "validation_error",
        "a",
    ),
    Case(
        "params one level too deep",
        COLLECT,
        _raw_collect(f'"params": {{"v": {_deep(MAX_JSON_DEPTH)}}}'),
        422,
        "validation_error",
        "params",
    ),
    Case(
        "params at the depth limit",
        COLLECT,
        _raw_collect(f'"params": {{"v": {_deep(MAX_JSON_DEPTH - 1)}}}'),
        204,
    ),
    Case(
        "10,000-deep conversion params",
        CONVERSION,
        _raw_conversion(f'"params": {{"v": {_deep(10_000)}}}'),
        422,
        "validation_error",
        "params",
    ),
    Case(
        "10,000-deep conversion consent",
        CONVERSION,
        _raw_conversion(f'"consent": {_deep(10_000, "{")}'),
        422,
        "validation_error",
        "consent",
    ),
    Case(
        "100-deep conversion params",
        CONVERSION,
        _raw_conversion(f'"params": {{"v": {_deep(100)}}}'),
        422,
        "validation_error",
        "params",
    ),
    Case(
        "10,000-deep conversion extra field",
        CONVERSION,
        _raw_conversion(f'"customer": {_deep(10_000)}'),
        422,
        "validation_error",
        "customer",
    ),
    Case(
        "500-deep conversion extra field is cut",
        CONVERSION,
        _raw_conversion(f'"customer": {_deep(500)}'),
        200,
    ),
    Case("10,000-deep conversion body", CONVERSION, _deep(10_000).encode(), 400, "invalid_json"),
    Case(
        "10,000-deep batch item",
        "/v1/api/collect/batch",
        f'{{"events": [{_deep(10_000)}]}}'.encode(),
        422,
        "validation_error",
        "events",
    ),
    # Lone surrogates are not Unicode text.
    Case(
        "lone surrogate in event_name", COLLECT, b'{"event_name": "\\ud800"}', 400, "invalid_json"
    ),
    Case(
        "lone low surrogate in a param key",
        COLLECT,
        _raw_collect('"params": {"\\udfff": 1}'),
        400,
        "invalid_json",
    ),
    Case(
        "lone surrogate in a param value",
        COLLECT,
        _raw_collect('"params": {"v": "a\\ud800b"}'),
        400,
        "invalid_json",
    ),
    Case(
        "lone surrogate in order_id",
        CONVERSION,
        _raw_conversion('"order_id": "\\udbff"'),
        400,
        "invalid_json",
    ),
    # Megabyte strings: bounded fields name themselves, params keep them, over 1 MiB is 413.
    *(
        Case(
            f"megabyte {name} on collect",
            COLLECT,
            _collect(**{name: "x" * MEGABYTE}),
            422,
            "validation_error",
            name,
        )
        for name in COLLECT_STRINGS
    ),
    *(
        Case(
            f"megabyte {name} on conversion",
            CONVERSION,
            _conversion(**{name: "x" * MEGABYTE}),
            422,
            "validation_error",
            name,
        )
        for name in CONVERSION_STRINGS
    ),
    Case("megabyte param value", COLLECT, _collect(params={"v": "x" * MEGABYTE}), 204),
    Case("megabyte unknown conversion field", CONVERSION, _conversion(note="x" * MEGABYTE), 200),
    Case(
        "body over 1 MiB",
        COLLECT,
        _collect(params={"v": "x" * (2 * MEGABYTE)}),
        413,
        "payload_too_large",
    ),
    # Input that looks hostile but is valid.
    Case("duplicate keys", COLLECT, b'{"event_name": "a", "event_name": "b"}', 204),
    Case(
        "NUL bytes in strings and keys",
        COLLECT,
        _collect(tag_id="t\x00", params={"k\x00": "v\x00"}),
        204,
    ),
    Case("text/plain", COLLECT, _collect(), 204, headers={"Content-Type": "text/plain"}),
    Case("no Content-Type", COLLECT, _collect(), 204, headers={"Content-Type": ""}),
    Case(
        "form Content-Type",
        COLLECT,
        _collect(),
        204,
        headers={"Content-Type": "application/x-www-form-urlencoded"},
    ),
    Case(
        "empty Idempotency-Key",
        CONVERSION,
        _conversion(order_id="ws"),
        200,
        headers={"Idempotency-Key": ""},
    ),
    Case(
        "5,000-character Idempotency-Key",
        CONVERSION,
        _conversion(),
        422,
        "validation_error",
        "Idempotency-Key",
        headers={"Idempotency-Key": "k" * 5000},
    ),
]


@pytest.mark.parametrize("case", CASES, ids=[case.name for case in CASES])
def test_hostile_body_gets_a_clear_answer(target: Target, case: Case) -> None:
    body = case.body.replace(b'"CLICK"', f'"{target.click_id}"'.encode())
    headers = {"Content-Type": "application/json", **case.headers}
    answer = target.http.post(case.path, content=body, headers=headers)
    if case.code is None:
        assert answer.status_code == case.status, answer.text[:500]
    else:
        assert_error(answer, case.status, case.code, case.field)


def test_valid_oddities_are_stored_as_sent(target: Target) -> None:
    """NUL bytes, surrogate pairs, big integers in params and money digits survive to the export.

    PostgreSQL text cannot hold a NUL: that store keeps the row with U+FFFD in its place.
    """
    odd = {
        "event_name": "odd\x00name \U0001f600",
        "event_id": "odd-1",
        "tag_id": "odd",
        "timestamp": 1771879200.9,
        "params": {"k\x00": "v\x00", "big": int(BIG)},
    }
    assert target.http.post(COLLECT, json=odd).status_code == 204
    digits = "123456789012345.678901234560"  # the most digits an amount may have
    body = _raw_conversion(f'"order_id": "digits", "conversion_value": {digits}')
    body = body.replace(b'"CLICK"', f'"{target.click_id}"'.encode())
    answer = target.http.post(CONVERSION, content=body)
    assert answer.status_code == 200, answer.text
    database_url = target.server.database_url
    nul = "\x00" if database_url.startswith("sqlite") else "\ufffd"
    [event] = [row for row in export(database_url, "events") if row["event_id"] == "odd-1"]
    assert event["event_name"] == f"odd{nul}name \U0001f600"
    assert event["timestamp"] == 1771879200
    assert event["params"][f"k{nul}"] == f"v{nul}"
    assert event["params"]["big"] == int(BIG)
    [conversion] = [r for r in export(database_url, "conversions") if r["order_id"] == "digits"]
    assert conversion["conversion_value"] == digits


def test_unknown_fields_are_sanitized_into_params_extra(target: Target) -> None:
    body = _conversion(
        order_id="extra-1",
        **{"k\x00\x1b[31m\n": "v\x00\x9b\x1b[0m", "note": "n" * MEGABYTE, "deep": [[[[[["x"]]]]]]},
    ).replace(b'"CLICK"', f'"{target.click_id}"'.encode())
    assert target.http.post(CONVERSION, content=body).status_code == 200
    [row] = [
        r for r in export(target.server.database_url, "conversions") if r["order_id"] == "extra-1"
    ]
    extra = row["params"]["extra"]
    assert extra["k[31m"] == "v[0m"
    assert len(extra["note"]) == 1024
    assert extra["deep"] == [[[None]]]


def test_hostile_items_in_a_batch_fail_alone(target: Target) -> None:
    events = (
        '{"events": [{"event_name": "ok \\u00e9", "event_id": "batch-ok", "tag_id": "b"}, '
        f'{{"event_name": "deep", "params": {{"v": {_deep(100)}}}}}, '
        f'{{"event_name": "huge", "timestamp": {BIG}}}, '
        '{"event_name": "x" , "event_name": 5}, '
        '"not an object"]}'
    )
    answer = target.http.post("/v1/api/collect/batch", content=events.encode())
    assert answer.status_code == 200, answer.text
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["ok", "error", "error", "error", "error"]
    assert [r["error"]["code"] for r in results[1:]] == [
        "validation_error",
        "validation_error",
        "validation_error",
        "invalid_json",
    ]
    assert results[1]["error"]["details"][0]["field"] == "params"
    assert results[2]["error"]["details"][0]["field"] == "timestamp"
    conversions = [
        {**CONVERSION_TEMPLATE, "click_id": target.click_id, "order_id": "batch-1"},
        {**CONVERSION_TEMPLATE, "click_id": target.click_id, "conversion_value": True},
        {**CONVERSION_TEMPLATE, "click_id": target.click_id, "currency": "US\x00"},
    ]
    answer = target.http.post("/v1/api/conversion/batch", json={"conversions": conversions})
    assert answer.status_code == 200, answer.text
    assert [r["status"] for r in answer.json()["results"]] == ["ok", "error", "error"]


def test_batch_envelope_that_is_not_utf8_is_400(target: Target) -> None:
    body = b'{"events": [], "\xff": 1}'
    answer = target.http.post("/v1/api/collect/batch", content=body)
    assert_error(answer, 400, "invalid_json")


# -- headers ---------------------------------------------------------------------------------


def _post_collect(target: Target, headers: list[tuple[bytes, bytes]]) -> httpx.Response:
    with httpx.Client(base_url=target.server.base_url, timeout=15) as bare:
        return bare.post(COLLECT, content=_collect(), headers=headers)


@pytest.mark.parametrize(
    "authorization",
    [
        b"",
        b"Bearer",
        b"Basic dXNlcjpwYXNz",
        b"Bearer thr_" + b"A" * 43,
        b"Bearer KEY trailing",
        b"Bearer\tKEY",
        b"Token KEY",
        b"Bearer \xff\xfe\x80latin-1",
        "Bearer thr_\u00e9\u00e9".encode(),
        b"Bearer " + b"x" * 60_000,
    ],
    ids=lambda value: repr(value[:24]),
)
def test_odd_bearer_tokens_are_401(target: Target, authorization: bytes) -> None:
    value = authorization.replace(b"KEY", target.api_key.encode())
    answer = _post_collect(target, [(b"Authorization", value)])
    assert_error(answer, 401, "unauthorized")
    assert answer.headers["WWW-Authenticate"].startswith("Bearer")


def test_two_authorization_headers_are_401(target: Target) -> None:
    auth = f"Bearer {target.api_key}".encode()
    answer = _post_collect(target, [(b"Authorization", auth), (b"Authorization", auth)])
    assert_error(answer, 401, "unauthorized")


@pytest.mark.parametrize("scheme", [b"bearer", b"BEARER", b"Bearer "])
def test_bearer_scheme_is_case_insensitive_and_spacing_tolerant(
    target: Target, scheme: bytes
) -> None:
    answer = _post_collect(target, [(b"Authorization", scheme + b" " + target.api_key.encode())])
    assert answer.status_code == 204, answer.text


def test_five_thousand_headers_are_431(target: Target) -> None:
    """Contract: 431 for headers over 100 lines (a million would otherwise all be read)."""
    headers = [(b"Authorization", f"Bearer {target.api_key}".encode())]
    headers += [(f"X-Filler-{i}".encode(), b"v") for i in range(5000)]
    assert_error(_post_collect(target, headers), 431, "request_header_fields_too_large")


def test_non_ascii_idempotency_key_is_kept(target: Target) -> None:
    body = _conversion(order_id="latin").replace(b'"CLICK"', f'"{target.click_id}"'.encode())
    first = target.http.post(CONVERSION, content=body, headers=[(b"Idempotency-Key", b"cl\xe9")])
    assert first.json() == {"status": "ok"}
    again = target.http.post(CONVERSION, content=body, headers=[(b"Idempotency-Key", b"cl\xe9")])
    assert again.json() == {"status": "duplicate"}


def _raw_request(target: Target, request: bytes) -> tuple[int, dict[str, str], bytes]:
    """Send bytes no HTTP client would, and read the whole answer (a drop fails the test)."""
    with socket.create_connection(("127.0.0.1", target.server.port), timeout=10) as sock:
        sock.sendall(request)
        received = b""
        while b"\r\n\r\n" not in received:
            chunk = sock.recv(65536)
            assert chunk, f"connection dropped without an answer: {received!r}"
            received += chunk
        head, _, body = received.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {
            name.strip().lower(): value.strip()
            for name, _, value in (line.partition(":") for line in lines[1:])
        }
        while len(body) < int(headers["content-length"]):
            chunk = sock.recv(65536)
            assert chunk, "connection dropped in the middle of the answer"
            body += chunk
    return int(lines[0].split()[1]), headers, body


@pytest.mark.parametrize(
    "header",
    [
        b"Idempotency-Key: a\rb",
        b"Idempotency-Key: a\nb",
        b"Idempotency-Key: a\x00b",
        b"Idempotency-Key: a\r\n folded",
        b"Authorization: Bearer KEY\rX-Injected: 1",
        b"Content-Length: -1",
        b"Content-Length: 1e3",
        b"Content-Length: 99999999999999999999999",
    ],
    ids=repr,
)
def test_header_injection_is_a_json_400(target: Target, header: bytes) -> None:
    body = _conversion()
    lines = [
        b"POST /v1/api/conversion HTTP/1.1",
        b"Host: 127.0.0.1",
        b"Authorization: Bearer " + target.api_key.encode(),
        header.replace(b"KEY", target.api_key.encode()),
    ]
    if not header.startswith(b"Content-Length"):
        lines.append(b"Content-Length: %d" % len(body))
    status, headers, content = _raw_request(target, b"\r\n".join(lines) + b"\r\n\r\n" + body)
    assert status == 400
    assert headers["content-type"] == "application/json"
    assert json.loads(content)["error"]["code"] == "bad_request"


def test_crlf_smuggled_as_two_headers_stays_two_headers(target: Target) -> None:
    """A CR LF in a header value ends it: what follows is a header of its own, never a body."""
    body = _collect()
    request = b"\r\n".join(
        [
            b"POST /v1/api/collect HTTP/1.1",
            b"Host: 127.0.0.1",
            b"Authorization: Bearer " + target.api_key.encode(),
            b"Idempotency-Key: a",
            b"X-Injected: 1",
            b"Content-Length: %d" % len(body),
        ]
    )
    status, _, _ = _raw_request(target, request + b"\r\n\r\n" + body)
    assert status == 204


# -- click links -------------------------------------------------------------------------------

LANDING = {"url": "https://shop.example.com/landing?a=1#top", "bid_id": "bid-1"}


def test_a_signed_link_redirects_with_the_landing_query_and_fragment_kept(target: Target) -> None:
    answer = target.http.get(_click_path(LANDING))
    assert answer.status_code == 302
    location = answer.headers["location"]
    assert location.startswith("https://shop.example.com/landing?a=1&thrad_click_id=")
    assert location.endswith("#top")
    assert "thrad_bid_id=bid-1" in location


def _abuse() -> list[tuple[str, str]]:
    good = urlencode({**LANDING, "sig": _mac(LANDING)})
    sig = _mac(LANDING)
    return [
        ("repeated url", good + "&url=https%3A%2F%2Fevil.example%2F"),
        ("url repeated before the signed one", "url=https%3A%2F%2Fevil.example%2F&" + good),
        ("repeated sig", good + "&sig=" + sig),
        ("missing sig", urlencode(LANDING)),
        ("empty sig", urlencode({**LANDING, "sig": ""})),
        ("sig of another URL", urlencode({**LANDING, "url": "https://evil.example/", "sig": sig})),
        ("non-ASCII sig", urlencode({**LANDING, "sig": "\u00e9" * 64})),
        ("unknown parameter", good + "&redirect=https%3A%2F%2Fevil.example%2F"),
        (
            "javascript: landing URL",
            urlencode({"url": "javascript:alert(1)", "sig": _mac({"url": "javascript:alert(1)"})}),
        ),
        (
            "data: landing URL",
            urlencode({"url": "data:text/html,x", "sig": _mac({"url": "data:text/html,x"})}),
        ),
        (
            "CRLF in url",
            urlencode(
                {
                    "url": "https://a.example/\r\nSet-Cookie: x=1",
                    "sig": _mac({"url": "https://a.example/\r\nSet-Cookie: x=1"}),
                }
            ),
        ),
        ("no host", urlencode({"url": "https:///x", "sig": _mac({"url": "https:///x"})})),
        ("semicolons", good.replace("&", ";")),
        ("bad percent escapes", "url=%ff%fe&sig=%ff"),
        ("only separators", "&&&"),
        ("no query", ""),
        ("tag_id too long", urlencode({**LANDING, "tag_id": "t" * 5000, "sig": sig})),
    ]


@pytest.mark.parametrize(("name", "query"), _abuse(), ids=[name for name, _ in _abuse()])
def test_click_link_abuse_is_a_400_without_redirect(target: Target, name: str, query: str) -> None:
    answer = target.http.get("/v1/click" + (f"?{query}" if query else ""))
    assert_error(answer, 400, "bad_click_link")
    assert "location" not in answer.headers


def test_click_signature_of_the_redirect_is_ours(target: Target) -> None:
    location = httpx.URL(target.http.get(_click_path(LANDING)).headers["location"])
    params = location.params
    expected = clicklinks.click_signature(
        SECRET, params["thrad_click_id"], int(params["thrad_exp"])
    )
    assert params["thrad_sig"] == expected
