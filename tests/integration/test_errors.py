"""Every row of the contract's error table (but 429 and 503) through the real server process.

Contract: errors are JSON {"error": {"code", "message", "details": [{"field", "message"}]}}
with the status of the table; never a 500 with a stack trace for anything a client can send.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
import pytest

from tests.integration.server import (
    ServerProcess,
    cli,
    create_key,
    error_of,
    expired_key,
    export,
    real_click,
)

COLLECT = "/v1/api/collect"
CONVERSION = "/v1/api/conversion"
ENDPOINTS = [COLLECT, "/api/collect", CONVERSION, "/api/conversion"]
MIB = 1024 * 1024


@pytest.fixture(scope="module")
def click_id(shared_server: ServerProcess) -> str:
    return real_click(shared_server)


def _conversion(click: str, **fields: Any) -> dict[str, Any]:
    return {
        "click_id": click,
        "conversion_time": "2026-02-19T18:00:00Z",
        "conversion_value": 49.99,
        "currency": "USD",
        **fields,
    }


def _fields(error: dict[str, Any]) -> list[str]:
    return [detail["field"] for detail in error["details"]]


# -- 400 invalid_json -------------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "body",
    [b"not json", b"{", b"", b"[]", b'"page_view"', b"42", b"null"],
    ids=["text", "truncated", "empty", "array", "string", "number", "null"],
)
def test_body_not_json_or_not_an_object_is_400_invalid_json(
    shared_client: httpx.Client, path: str, body: bytes
) -> None:
    """Contract: body is not JSON, or not a JSON object -> 400 invalid_json."""
    response = shared_client.post(path, content=body, headers={"Content-Type": "application/json"})
    error_of(response, 400, "invalid_json")


@pytest.mark.parametrize("path", ENDPOINTS)
def test_body_not_utf8_is_400_invalid_json(
    shared_client: httpx.Client, click_id: str, path: str
) -> None:
    """Contract: body is not UTF-8 -> 400 invalid_json (an otherwise valid body, one bad byte)."""
    if "collect" in path:
        body = b'{"event_name": "caf\xe9"}'
    else:
        body = json.dumps(_conversion(click_id)).encode()[:-1] + b', "tier": "\xff"}'
    response = shared_client.post(path, content=body, headers={"Content-Type": "application/json"})
    error_of(response, 400, "invalid_json")


# -- 400 missing_field ------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{}, {"event_name": None}, {"tag_id": "adv_001"}])
def test_collect_without_event_name_is_400_missing_field(
    shared_client: httpx.Client, body: dict[str, Any]
) -> None:
    """Seed: event_name is required; contract: missing (or null) -> 400 missing_field."""
    error = error_of(shared_client.post(COLLECT, json=body), 400, "missing_field")
    assert _fields(error) == ["event_name"]


@pytest.mark.parametrize("field", ["click_id", "conversion_time", "conversion_value", "currency"])
@pytest.mark.parametrize("how", ["omitted", "null"])
def test_conversion_without_a_required_field_is_400_missing_field(
    shared_client: httpx.Client, click_id: str, field: str, how: str
) -> None:
    """Seed: click_id, conversion_time, conversion_value, currency are required; contract:
    missing (or null) -> 400 missing_field naming the field."""
    body = _conversion(click_id)
    if how == "omitted":
        del body[field]
    else:
        body[field] = None
    error = error_of(shared_client.post(CONVERSION, json=body), 400, "missing_field")
    assert _fields(error) == [field]


# -- 422 validation_error ---------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"event_name": 42}, "event_name"),
        ({"event_name": "a", "tag_id": 1}, "tag_id"),
        ({"event_name": "a", "event_id": True}, "event_id"),
        ({"event_name": "a", "page_url": {"u": 1}}, "page_url"),
        ({"event_name": "a", "session_id": ["s"]}, "session_id"),
        ({"event_name": "a", "timestamp": "1771879200"}, "timestamp"),
        ({"event_name": "a", "timestamp": True}, "timestamp"),
        ({"event_name": "a", "view_time_ms": 1.5}, "view_time_ms"),
        ({"event_name": "a", "consent": "yes"}, "consent"),
        ({"event_name": "a", "params": ["x"]}, "params"),
        ({"event_name": "a", "client_ip": "not-an-ip"}, "client_ip"),
    ],
)
def test_collect_wrong_type_or_format_is_422_naming_the_field(
    shared_client: httpx.Client, body: dict[str, Any], field: str
) -> None:
    """Contract: a field with the wrong type or format -> 422 validation_error, details name it."""
    error = error_of(shared_client.post(COLLECT, json=body), 422, "validation_error")
    assert _fields(error) == [field]


@pytest.mark.parametrize(
    ("fields", "field"),
    [
        ({"conversion_value": "49.99"}, "conversion_value"),
        ({"conversion_value": True}, "conversion_value"),
        ({"currency": "ABC"}, "currency"),
        ({"currency": "US"}, "currency"),
        ({"currency": 840}, "currency"),
        ({"conversion_time": "2026-02-19"}, "conversion_time"),
        ({"conversion_time": "yesterday"}, "conversion_time"),
        ({"conversion_time": 1771524000}, "conversion_time"),
        ({"order_id": 123}, "order_id"),
        ({"event_type": ["purchase"]}, "event_type"),
        ({"click_id": 7}, "click_id"),
        ({"client_ip": "300.1.1.1"}, "client_ip"),
        ({"params": "x"}, "params"),
    ],
)
def test_conversion_wrong_type_or_format_is_422_naming_the_field(
    shared_client: httpx.Client, click_id: str, fields: dict[str, Any], field: str
) -> None:
    """Contract: conversion_value a finite number (a string is a 422), currency ISO 4217,
    conversion_time with date and time, string fields strings -> else 422 naming the field."""
    body = _conversion(click_id, **fields)
    error = error_of(shared_client.post(CONVERSION, json=body), 422, "validation_error")
    assert _fields(error) == [field]


# -- every problem at once --------------------------------------------------------------------

JARGON = ("`", "Expected", "got ", "$.", "[...]")


def _problems(error: dict[str, Any]) -> dict[str, str]:
    messages = [error["message"], *(detail["message"] for detail in error["details"])]
    assert not [(word, m) for m in messages for word in JARGON if word in m], error
    return {detail["field"]: detail["message"] for detail in error["details"]}


def test_collect_details_list_every_problem_in_plain_words(shared_client: httpx.Client) -> None:
    """Contract: details lists every problem found in the body, not only the first."""
    body = {"event_name": 5, "tag_id": ["t"], "consent": "yes", "params": [1], "view_time_ms": -1}
    error = error_of(shared_client.post(COLLECT, json=body), 422, "validation_error")
    assert _problems(error) == {
        "event_name": "must be a string",
        "tag_id": "must be a string",
        "view_time_ms": "must be from 0 to 9007199254740992 milliseconds",
        "consent": "must be an object",
        "params": "must be an object",
    }
    assert error["message"] == "event_name: must be a string (and 4 more problems)"


def test_a_missing_field_with_wrong_ones_is_400_listing_them_all(
    shared_client: httpx.Client, click_id: str
) -> None:
    """Contract: a required field missing -> 400 missing_field; the type problems are listed."""
    body = {"tag_id": 1, "client_ip": "not-an-ip"}
    error = error_of(shared_client.post(COLLECT, json=body), 400, "missing_field")
    assert _problems(error) == {
        "event_name": "required field is missing",
        "tag_id": "must be a string",
        "client_ip": "must be an IPv4 or IPv6 address",
    }
    conversion = _conversion(click_id, currency="ABC", conversion_value="49.99", order_id=5)
    del conversion["conversion_time"]
    error = error_of(shared_client.post(CONVERSION, json=conversion), 400, "missing_field")
    assert _problems(error) == {
        "conversion_time": "required field is missing",
        "conversion_value": "must be a number",
        "currency": "'ABC' is not an ISO 4217 code",
        "order_id": "must be a string",
    }


def test_a_timestamp_in_milliseconds_is_said_to_be(shared_client: httpx.Client) -> None:
    """Contract: a millisecond timestamp says that it looks like milliseconds."""
    body = {"event_name": "a", "timestamp": 1771879200000}
    error = error_of(shared_client.post(COLLECT, json=body), 422, "validation_error")
    assert _problems(error) == {
        "timestamp": "looks like milliseconds: must be Unix time in seconds "
        "(1771879200, not 1771879200000)"
    }


def test_a_batch_item_lists_its_own_problems_relative_to_the_item(
    shared_client: httpx.Client, click_id: str
) -> None:
    """Each item is answered at its index with every problem of that item (paths inside it)."""
    events = [{"event_name": "a"}] * 3 + [{"tag_id": 1, "params": "x"}]
    answer = shared_client.post("/v1/api/collect/batch", json={"events": events})
    assert answer.status_code == 200, answer.text
    item = answer.json()["results"][3]
    assert item["index"] == 3
    assert item["error"]["code"] == "missing_field"
    assert _problems(item["error"]) == {
        "event_name": "required field is missing",
        "tag_id": "must be a string",
        "params": "must be an object",
    }
    conversions = [_conversion(click_id, currency="usd", event_id=f"batch-{i}") for i in range(3)]
    conversions.append(_conversion(click_id, currency=840, conversion_time="2026-02-19"))
    answer = shared_client.post("/v1/api/conversion/batch", json={"conversions": conversions})
    item = answer.json()["results"][3]
    assert item["error"]["code"] == "validation_error"
    assert _problems(item["error"]) == {
        "conversion_time": "must be an ISO-8601 date and time",
        "currency": "must be a string",
    }


def test_rejected_bodies_store_nothing(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str
) -> None:
    """A 400 or 422 means nothing was stored."""
    marker = "rejected-marker"
    shared_client.post(COLLECT, json={"event_name": 1, "event_id": marker})
    shared_client.post(CONVERSION, json=_conversion(click_id, currency="ABC", order_id=marker))
    assert not [r for r in export(shared_server.database_url, "events") if r["event_id"] == marker]
    conversions = export(shared_server.database_url, "conversions")
    assert not [r for r in conversions if r["order_id"] == marker]


# -- 401 unauthorized -------------------------------------------------------------------------


def _unauthorized(response: httpx.Response) -> None:
    error_of(response, 401, "unauthorized")
    assert response.headers["www-authenticate"].lower().startswith("bearer")


@pytest.mark.parametrize("path", ENDPOINTS)
@pytest.mark.parametrize(
    "authorization",
    [
        None,
        "",
        "thr_no_scheme",
        "Basic dXNlcjpwYXNz",
        "Bearer",
        "Bearer two words",
        "Bearer thr_unknownunknownunknownunknownunknownunknow",
    ],
    ids=["missing", "empty", "no-scheme", "basic", "no-token", "two-tokens", "unknown"],
)
def test_missing_malformed_or_unknown_key_is_401_with_www_authenticate(
    shared_server: ServerProcess, path: str, authorization: str | None
) -> None:
    """Seed: missing/invalid API key -> 401; contract: + WWW-Authenticate: Bearer."""
    headers = {"Authorization": authorization} if authorization is not None else {}
    response = httpx.post(
        f"{shared_server.base_url}{path}", json={"event_name": "a"}, headers=headers
    )
    _unauthorized(response)


def test_revoked_key_is_401(shared_server: ServerProcess) -> None:
    """Seed: a revoked key -> 401 (a key never used before its revocation: refused at once)."""
    key = create_key(shared_server.database_url, "acme", "revoked")
    cli(shared_server.database_url, "keys", "revoke", key["key_id"])
    response = httpx.post(
        f"{shared_server.base_url}{COLLECT}",
        json={"event_name": "a"},
        headers={"Authorization": f"Bearer {key['api_key']}"},
    )
    _unauthorized(response)


def test_expired_key_is_401(shared_server: ServerProcess) -> None:
    """Seed: an expired key -> 401."""
    key = expired_key(shared_server.database_url)
    response = httpx.post(
        f"{shared_server.base_url}{CONVERSION}",
        json={"click_id": "x"},
        headers={"Authorization": f"Bearer {key['api_key']}"},
    )
    _unauthorized(response)


def test_unauthorized_request_stores_nothing(shared_server: ServerProcess) -> None:
    """A 401 means the event was not stored."""
    marker = "unauthorized-marker"
    httpx.post(
        f"{shared_server.base_url}{COLLECT}",
        json={"event_name": "a", "event_id": marker},
        headers={"Authorization": "Bearer thr_nope"},
    )
    assert not [r for r in export(shared_server.database_url, "events") if r["event_id"] == marker]


# -- 404 click_not_found ----------------------------------------------------------------------


@pytest.mark.parametrize("path", [CONVERSION, "/api/conversion"])
def test_conversion_with_unknown_click_id_is_404_click_not_found(
    shared_client: httpx.Client, path: str
) -> None:
    """Seed: 404 click_id not found (conversion API); contract code click_not_found."""
    body = _conversion("11111111-1111-4111-8111-111111111111")
    error_of(shared_client.post(path, json=body), 404, "click_not_found")


# -- 413 payload_too_large --------------------------------------------------------------------


@pytest.mark.parametrize("path", ENDPOINTS)
def test_body_over_one_mebibyte_is_413(shared_client: httpx.Client, path: str) -> None:
    """Contract: body larger than the limit (1 MiB) -> 413 payload_too_large."""
    padding = "x" * MIB
    response = shared_client.post(path, json={"event_name": "a", "params": {"pad": padding}})
    error_of(response, 413, "payload_too_large")


@pytest.mark.parametrize("authorization", [None, "Bearer thr_" + "x" * 43])
def test_a_declared_size_over_the_limit_is_413_whatever_the_key(
    shared_server: ServerProcess, authorization: str | None
) -> None:
    """The declared size is checked first (it costs nothing): an oversized body is a 413 also
    without a key or with one that is not valid, and the body is never read."""
    headers = {"Content-Type": "application/json"}
    if authorization is not None:
        headers["Authorization"] = authorization
    response = httpx.post(
        f"{shared_server.base_url}{COLLECT}", content=b"x" * (MIB + 1), headers=headers
    )
    error_of(response, 413, "payload_too_large")


def test_chunked_body_over_one_mebibyte_is_413(shared_client: httpx.Client) -> None:
    """Contract: 413 also when the body comes without a Content-Length (chunked)."""

    def chunks():  # type: ignore[no-untyped-def]
        yield b'{"event_name": "a", "params": {"pad": "'
        for _ in range(17):
            yield b"x" * 65536
        yield b'"}}'

    response = shared_client.post(COLLECT, content=chunks())
    error_of(response, 413, "payload_too_large")


def test_body_just_under_one_mebibyte_is_accepted(shared_client: httpx.Client) -> None:
    """The limit is the limit: a body of (almost) 1 MiB is still stored."""
    body = json.dumps({"event_name": "a", "params": {"pad": ""}})
    padding = "x" * (MIB - len(body))
    response = shared_client.post(
        COLLECT,
        content=body.replace('""', f'"{padding}"').encode(),
        headers={"Content-Type": "application/json"},
    )
    assert response.status_code == 204, response.text
