"""POST /v1/api/conversion and /api/conversion through the real server process.

Every conversion here is tied to a real click: a link signed by `thrad-events clicks link`,
followed on the server, its thrad_click_id read from the redirect. Tests keep to rows of their
own (unique ids) on one server shared by the module.
"""

from __future__ import annotations

import asyncio
import json
import uuid
from typing import Any

import httpx
import pytest

from tests.integration.server import ServerProcess, create_key, export, real_click

CONVERSION = "/v1/api/conversion"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


@pytest.fixture(scope="module")
def click_id(shared_server: ServerProcess) -> str:
    return real_click(shared_server)


def _body(click_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "click_id": click_id,
        "conversion_time": "2026-02-19T18:00:00Z",
        "conversion_value": 49.99,
        "currency": "USD",
        **fields,
    }


def _convert(
    client: httpx.Client, body: dict[str, Any] | bytes, idempotency_key: str | None = None
) -> str:
    headers = {"Idempotency-Key": idempotency_key} if idempotency_key is not None else {}
    if isinstance(body, bytes):
        headers["Content-Type"] = "application/json"
        response = client.post(CONVERSION, content=body, headers=headers)
    else:
        response = client.post(CONVERSION, json=body, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("application/json")
    status: str = response.json()["status"]
    return status


def _rows(server: ServerProcess, field: str, value: str) -> list[dict[str, Any]]:
    return [row for row in export(server.database_url, "conversions") if row[field] == value]


def test_seed_conversion_example_on_a_real_click_is_ok_and_stored(
    shared_server: ServerProcess, shared_client: httpx.Client, shared_key: dict[str, Any]
) -> None:
    """Seed 000 (S2S Conversion API): the curl example, with a click_id from a real redirect,
    answers {"status": "ok"} and is stored with the seed's fields."""
    click_id = real_click(shared_server)
    order_id = _unique("order-123")
    response = shared_client.post(
        "/v1/api/conversion",
        headers={"Content-Type": "application/json", "Idempotency-Key": order_id},
        json={
            "click_id": click_id,
            "conversion_time": "2026-02-19T18:00:00Z",
            "conversion_value": 49.99,
            "currency": "USD",
            "order_id": order_id,
            "event_type": "purchase_completed",
            "customer_tier": "gold",
        },
    )
    assert response.status_code == 200
    assert response.json() == {"status": "ok"}
    [row] = _rows(shared_server, "order_id", order_id)
    assert row["click_id"] == click_id
    assert row["conversion_time"] == "2026-02-19T18:00:00Z"
    assert row["conversion_value"] == "49.99"
    assert row["currency"] == "USD"
    assert row["event_type"] == "purchase_completed"
    assert row["idempotency_key"] == order_id
    assert row["channel"] == "server"
    assert row["partner_id"] == shared_key["partner_id"]
    assert row["params"] == {
        "integration": "partner_s2s",
        "partner_id": shared_key["partner_id"],
        "api_key_label": "test",
        "extra": {"customer_tier": "gold"},
    }


def test_seed_conversion_repeat_is_duplicate_and_stored_once(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str
) -> None:
    """Seed: Responses: Success {"status":"ok"}, Duplicate {"status":"duplicate"}."""
    order_id = _unique("order")
    body = _body(click_id, order_id=order_id)
    assert _convert(shared_client, body, idempotency_key=order_id) == "ok"
    assert _convert(shared_client, body, idempotency_key=order_id) == "duplicate"
    assert len(_rows(shared_server, "order_id", order_id)) == 1


def test_api_conversion_alias_behaves_as_v1(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str
) -> None:
    """Contract: POST /api/conversion is an alias of /v1/api/conversion (same dedupe space)."""
    order_id = _unique("alias")
    body = _body(click_id, order_id=order_id)
    first = shared_client.post("/api/conversion", json=body, headers={"Idempotency-Key": order_id})
    assert (first.status_code, first.json()) == (200, {"status": "ok"})
    again = shared_client.post(CONVERSION, json=body, headers={"Idempotency-Key": order_id})
    assert again.json() == {"status": "duplicate"}
    assert len(_rows(shared_server, "order_id", order_id)) == 1


def test_event_type_defaults_to_purchase_completed(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str
) -> None:
    """Seed: event_type defaults to purchase_completed if omitted."""
    order_id = _unique("default-type")
    assert _convert(shared_client, _body(click_id, order_id=order_id)) == "ok"
    [row] = _rows(shared_server, "order_id", order_id)
    assert row["event_type"] == "purchase_completed"


@pytest.mark.parametrize(("sent", "stored"), [(None, "server"), ("email", "email")])
def test_conversion_keeps_the_given_channel_and_defaults_to_server(
    shared_server: ServerProcess,
    shared_client: httpx.Client,
    click_id: str,
    sent: str | None,
    stored: str,
) -> None:
    """Contract: conversion stores the given channel, "server" when omitted."""
    order_id = _unique("channel")
    extra = {"channel": sent} if sent is not None else {}
    assert _convert(shared_client, _body(click_id, order_id=order_id, **extra)) == "ok"
    [row] = _rows(shared_server, "order_id", order_id)
    assert row["channel"] == stored


@pytest.mark.parametrize(
    ("sent", "exported"),
    [
        ("49.99", "49.99"),
        ("10", "10"),
        ("0.10", "0.10"),
        ("100.50", "100.50"),
        ("1234567890.123456789", "1234567890.123456789"),
        ("0.1", "0.1"),
    ],
)
def test_conversion_value_is_exported_as_a_string_with_the_digits_sent(
    shared_server: ServerProcess,
    shared_client: httpx.Client,
    click_id: str,
    sent: str,
    exported: str,
) -> None:
    """Contract: money is exact, exported as a JSON string with the same digits
    (49.99 -> "49.99"), never through a binary float."""
    order_id = _unique("value")
    raw = json.dumps(_body(click_id, order_id=order_id, conversion_value="@")).replace('"@"', sent)
    assert _convert(shared_client, raw.encode()) == "ok"
    [row] = _rows(shared_server, "order_id", order_id)
    assert row["conversion_value"] == exported


@pytest.mark.parametrize("sent", ["usd", "Usd", "eur"])
def test_currency_is_stored_upper_case(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str, sent: str
) -> None:
    """Contract: currency is case-insensitive on input, stored upper-case."""
    order_id = _unique("currency")
    assert _convert(shared_client, _body(click_id, order_id=order_id, currency=sent)) == "ok"
    [row] = _rows(shared_server, "order_id", order_id)
    assert row["currency"] == sent.upper()


@pytest.mark.parametrize(
    ("sent", "stored"),
    [
        ("2026-02-19T18:00:00Z", "2026-02-19T18:00:00Z"),
        ("2026-02-19T20:00:00+02:00", "2026-02-19T18:00:00Z"),
        ("2026-02-19T13:00:00-05:00", "2026-02-19T18:00:00Z"),
        ("2026-02-20T01:30:00+07:30", "2026-02-19T18:00:00Z"),
        ("2026-02-19T18:00:00", "2026-02-19T18:00:00Z"),
    ],
)
def test_conversion_time_is_stored_in_utc(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str, sent: str, stored: str
) -> None:
    """Contract: conversion_time with an offset is stored in UTC; without one it is UTC."""
    order_id = _unique("time")
    body = _body(click_id, order_id=order_id, conversion_time=sent)
    assert _convert(shared_client, body) == "ok"
    [row] = _rows(shared_server, "order_id", order_id)
    assert row["conversion_time"] == stored


def test_unknown_top_level_fields_are_stored_sanitized_under_params_extra(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str
) -> None:
    """Seed: additional top-level fields are accepted and stored in sanitized form under
    params.extra; the client's own params are kept beside it."""
    order_id = _unique("extra")
    body = _body(
        click_id,
        order_id=order_id,
        customer_tier="gold",
        coupon={"code": "SPRING\u0000", "pct": 10},
        items=[1, 2],
        params={"step": "paid"},
    )
    assert _convert(shared_client, body) == "ok"
    [row] = _rows(shared_server, "order_id", order_id)
    assert row["params"]["step"] == "paid"
    assert row["params"]["extra"] == {
        "customer_tier": "gold",
        "coupon": {"code": "SPRING", "pct": 10},
        "items": [1, 2],
    }


def test_optional_conversion_fields_are_stored_as_sent(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str
) -> None:
    """Seed: conversion's optional fields (page_url ... tag_id) keep their names and values."""
    order_id = _unique("fields")
    optional = {
        "order_id": order_id,
        "event_id": _unique("evt"),
        "page_url": "https://shop.example.com/thanks",
        "referrer": "https://shop.example.com/cart",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        "session_id": "sess_1",
        "client_id": "user_1",
        "tag_id": "adv_001",
    }
    assert _convert(shared_client, _body(click_id, **optional)) == "ok"
    [row] = _rows(shared_server, "order_id", order_id)
    for field, value in optional.items():
        assert row[field] == value, field


# -- dedupe -----------------------------------------------------------------------------------


def test_same_idempotency_key_is_duplicate_even_with_another_body(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str
) -> None:
    """Seed: reuse the same Idempotency-Key for retries of the same event: deduplicated."""
    key = _unique("idem")
    first = _body(click_id, order_id=_unique("o"), event_id=_unique("e"))
    second = _body(click_id, order_id=_unique("o"), event_id=_unique("e"), conversion_value=5)
    assert _convert(shared_client, first, idempotency_key=key) == "ok"
    assert _convert(shared_client, second, idempotency_key=key) == "duplicate"
    [row] = _rows(shared_server, "idempotency_key", key)
    assert row["order_id"] == first["order_id"]


def test_same_event_id_without_idempotency_key_is_duplicate(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str
) -> None:
    """Seed: dedupe by Idempotency-Key header *or event_id field*."""
    event_id = _unique("evt")
    assert _convert(shared_client, _body(click_id, event_id=event_id)) == "ok"
    assert _convert(shared_client, _body(click_id, event_id=event_id, currency="EUR")) == (
        "duplicate"
    )
    assert len(_rows(shared_server, "event_id", event_id)) == 1


def test_idempotency_key_takes_precedence_over_event_id(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str
) -> None:
    """Seed: if both Idempotency-Key and event_id are supplied, Idempotency-Key takes
    precedence: the same event_id under two different keys is two conversions."""
    event_id = _unique("evt")
    assert _convert(shared_client, _body(click_id, event_id=event_id), _unique("k")) == "ok"
    assert _convert(shared_client, _body(click_id, event_id=event_id), _unique("k")) == "ok"
    assert len(_rows(shared_server, "event_id", event_id)) == 2


def test_same_click_event_type_and_order_id_is_duplicate(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str
) -> None:
    """Seed: order_id (when provided) dedupes for the same click/event type, whatever the
    Idempotency-Key or event_id."""
    order_id = _unique("order")
    body = _body(click_id, order_id=order_id)
    assert _convert(shared_client, {**body, "event_id": _unique("e")}, _unique("k")) == "ok"
    assert _convert(shared_client, {**body, "event_id": _unique("e")}, _unique("k")) == (
        "duplicate"
    )
    assert _convert(shared_client, body) == "duplicate"
    assert len(_rows(shared_server, "order_id", order_id)) == 1


def test_same_order_id_with_another_event_type_or_click_is_another_conversion(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str
) -> None:
    """Contract: the order key is (click_id, event_type, order_id): change one, a new row."""
    order_id = _unique("order")
    other_click = real_click(shared_server)
    assert _convert(shared_client, _body(click_id, order_id=order_id)) == "ok"
    assert _convert(shared_client, _body(click_id, order_id=order_id, event_type="refund")) == "ok"
    assert _convert(shared_client, _body(other_click, order_id=order_id)) == "ok"
    assert len(_rows(shared_server, "order_id", order_id)) == 3


def test_without_any_dedupe_key_identical_conversions_are_each_stored(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Contract: dedupe only by Idempotency-Key, event_id or (click, event_type, order_id)."""
    click_id = real_click(shared_server)
    for _ in range(2):
        assert _convert(shared_client, _body(click_id)) == "ok"
    assert len(_rows(shared_server, "click_id", click_id)) == 2


def test_conversion_dedupe_is_per_partner(
    shared_server: ServerProcess,
    shared_client: httpx.Client,
    shared_key: dict[str, Any],
    click_id: str,
) -> None:
    """Contract: conversion dedupe, *per partner*: another partner's same key is its own."""
    key = _unique("shared-key")
    other = create_key(shared_server.database_url, "globex", "other")
    assert _convert(shared_client, _body(click_id), idempotency_key=key) == "ok"
    with httpx.Client(
        base_url=shared_server.base_url,
        headers={"Authorization": f"Bearer {other['api_key']}"},
        timeout=10,
    ) as globex:
        assert _convert(globex, _body(click_id), idempotency_key=key) == "ok"
        assert _convert(globex, _body(click_id), idempotency_key=key) == "duplicate"
    rows = _rows(shared_server, "idempotency_key", key)
    assert sorted(row["partner_id"] for row in rows) == sorted(
        [shared_key["partner_id"], other["partner_id"]]
    )


def test_racing_identical_conversions_give_exactly_one_ok(
    shared_server: ServerProcess, shared_key: dict[str, Any], click_id: str
) -> None:
    """Contract: deduplication holds under concurrency: N identical requests racing give
    exactly one `ok` (40 here, same Idempotency-Key) and one stored row."""
    key = _unique("race")
    body = _body(click_id, order_id=_unique("race-order"))

    async def race() -> list[httpx.Response]:
        async with httpx.AsyncClient(
            base_url=shared_server.base_url,
            headers={"Authorization": f"Bearer {shared_key['api_key']}", "Idempotency-Key": key},
            timeout=30,
            limits=httpx.Limits(max_connections=40),
        ) as http:
            return list(
                await asyncio.gather(*(http.post(CONVERSION, json=body) for _ in range(40)))
            )

    responses = asyncio.run(race())
    assert [r.status_code for r in responses] == [200] * 40
    statuses = [r.json()["status"] for r in responses]
    assert statuses.count("ok") == 1
    assert statuses.count("duplicate") == 39
    assert len(_rows(shared_server, "idempotency_key", key)) == 1
