"""Money and numbers through the real server process, on both stores.

README (POST /v1/api/conversion): `conversion_value` is a JSON number with |value| < 10^15 and
at most 12 digits after the decimal point, exported as a string in plain notation with the
digits sent (`49.990` -> "49.990", `1e2` -> "100"); a number out of range anywhere in a body is
a 422 naming its field, never a 500. One server serves the module; each test looks only at the
rows it wrote (unique ids), and a server error logged during a test fails it.
"""

from __future__ import annotations

import time
import uuid

import httpx
import pytest

from tests.integration.server import ServerProcess, export, export_csv, real_click

CONVERSION = "/v1/api/conversion"
BATCH = "/v1/api/conversion/batch"
HUGE_INTEGER = "9" * 5000  # longer than Python reads as an int


@pytest.fixture(scope="module")
def click_id(shared_server: ServerProcess) -> str:
    return real_click(shared_server)


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _raw_conversion(click_id: str, order_id: str, value: str = "49.99", extra: str = "") -> bytes:
    """A conversion body with `value` as the JSON text of conversion_value, and `extra` (raw
    JSON members) added."""
    members = [
        f'"click_id": "{click_id}"',
        '"conversion_time": "2026-02-19T18:00:00Z"',
        f'"conversion_value": {value}',
        '"currency": "USD"',
        f'"order_id": "{order_id}"',
    ]
    if extra:
        members.append(extra)
    return ("{" + ", ".join(members) + "}").encode()


def _post(client: httpx.Client, path: str, body: bytes) -> httpx.Response:
    return client.post(path, content=body, headers={"Content-Type": "application/json"})


def _validation_error(response: httpx.Response, field: str) -> str:
    assert response.status_code == 422, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == "validation_error"
    [detail] = error["details"]
    assert detail["field"] == field, error
    message: str = detail["message"]
    return message


@pytest.mark.parametrize(
    ("sent", "exported"),
    [
        ("49.99", "49.99"),
        ("49.990", "49.990"),
        ("1e2", "100"),
        ("1.50e1", "15.0"),
        ("1E-7", "0.0000001"),
        ("-0.000000000001", "-0.000000000001"),
        ("999999999999999.999999999999", "999999999999999.999999999999"),
    ],
)
def test_conversion_value_is_exported_in_plain_notation_with_the_digits_sent(
    shared_server: ServerProcess,
    shared_client: httpx.Client,
    click_id: str,
    sent: str,
    exported: str,
) -> None:
    """Exported conversion_value (jsonl and csv) is a string in plain notation holding the
    client's own digits and trailing zeros, on SQLite TEXT as on PostgreSQL numeric."""
    order_id = _unique("plain")
    answer = _post(shared_client, CONVERSION, _raw_conversion(click_id, order_id, sent))
    assert answer.json() == {"status": "ok"}, answer.text
    database_url = shared_server.database_url
    [row] = [r for r in export(database_url, "conversions") if r["order_id"] == order_id]
    assert row["conversion_value"] == exported
    _, csv_rows = export_csv(database_url, "conversions")
    [csv_row] = [r for r in csv_rows if r["order_id"] == order_id]
    assert csv_row["conversion_value"] == exported


@pytest.mark.parametrize(
    ("sent", "problem"),
    [
        ("1e-300000000", "12 digits after the decimal point"),
        ("0.0000000000001", "12 digits after the decimal point"),
        ("1e15", "below 1e15"),
        ("-1000000000000000", "below 1e15"),
        ("1e2000000", "below 1e15"),
        (HUGE_INTEGER, "below 1e15"),
    ],
)
def test_conversion_value_out_of_bounds_is_a_quick_422(
    shared_client: httpx.Client, click_id: str, sent: str, problem: str
) -> None:
    """|value| < 10^15 with at most 12 digits after the point; anything else is a 422 naming
    conversion_value, answered at once (the hostile exponents are never built as numbers)."""
    started = time.monotonic()
    answer = _post(shared_client, CONVERSION, _raw_conversion(click_id, _unique("bound"), sent))
    assert time.monotonic() - started < 5
    assert problem in _validation_error(answer, "conversion_value")


@pytest.mark.parametrize(
    ("extra", "field"),
    [
        ('"params": {"v": 1e2000000}', "params.v"),
        ('"params": {"list": [1, {"w": -1e-300000000}]}', "params.list[1].w"),
        ('"consent": {"ad_storage": 1e400}', "consent.ad_storage"),
        ('"customer_score": 1e2000000', "customer_score"),
        ('"customer": {"score": 1e-5000}', "customer.score"),
        (f'"params": {{"v": {HUGE_INTEGER}}}', "params"),
        (f'"customer_score": {HUGE_INTEGER}', "customer_score"),
    ],
)
def test_a_number_out_of_range_anywhere_in_a_conversion_is_a_422_naming_it(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str, extra: str, field: str
) -> None:
    """Numbers in params, consent and unknown fields (params.extra) keep their digits, within a
    double's range; beyond it a 422 naming the field path, and nothing stored."""
    order_id = _unique("range")
    answer = _post(shared_client, CONVERSION, _raw_conversion(click_id, order_id, extra=extra))
    assert "out of range" in _validation_error(answer, field)
    rows = export(shared_server.database_url, "conversions")
    assert not [r for r in rows if r["order_id"] == order_id]


def test_numbers_within_range_in_a_conversion_are_stored_and_exported(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str
) -> None:
    order_id = _unique("in-range")
    extra = '"params": {"v": 1.5e300, "w": 1e-300}, "customer_score": 12345678901234567890'
    answer = _post(shared_client, CONVERSION, _raw_conversion(click_id, order_id, extra=extra))
    assert answer.json() == {"status": "ok"}, answer.text
    [row] = [
        r for r in export(shared_server.database_url, "conversions") if r["order_id"] == order_id
    ]
    assert float(row["params"]["v"]) == 1.5e300
    assert float(row["params"]["w"]) == 1e-300
    assert row["params"]["extra"]["customer_score"] == 12345678901234567890


def test_one_out_of_range_conversion_in_a_batch_fails_alone(
    shared_server: ServerProcess, shared_client: httpx.Client, click_id: str
) -> None:
    """A huge number in one item is that item's 422; the valid items are stored."""
    orders = [_unique("batch") for _ in range(4)]
    items = [
        _raw_conversion(click_id, orders[0]),
        _raw_conversion(click_id, orders[1], "1e2000000"),
        _raw_conversion(click_id, orders[2], extra='"note": 1e2000000'),
        _raw_conversion(click_id, orders[3], "1e2"),
    ]
    body = b'{"conversions": [' + b", ".join(items) + b"]}"
    answer = _post(shared_client, BATCH, body)
    assert answer.status_code == 200, answer.text[:500]
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["ok", "error", "error", "ok"]
    assert [r["error"]["details"][0]["field"] for r in results[1:3]] == [
        "conversion_value",
        "note",
    ]
    stored = {
        r["order_id"]: r["conversion_value"]
        for r in export(shared_server.database_url, "conversions")
        if r["order_id"] in orders
    }
    assert stored == {orders[0]: "49.99", orders[3]: "100"}


@pytest.mark.parametrize(
    ("fragment", "status", "field"),
    [
        ('"params": {"v": 1e2000000}', 422, "params"),
        ('"params": {"v": 1e-300000000}', 204, None),
        ('"consent": {"v": [1e2000000]}', 422, "consent"),
        ('"timestamp": 1e2000000', 422, "timestamp"),
        ('"timestamp": 1e-300000000', 204, None),
        ('"view_time_ms": 1e2000000', 422, "view_time_ms"),
        (f'"params": {{"v": {HUGE_INTEGER}}}', 422, "params"),
    ],
)
def test_huge_numbers_in_collect_and_its_batch_are_never_a_500_and_export(
    shared_server: ServerProcess,
    shared_client: httpx.Client,
    fragment: str,
    status: int,
    field: str | None,
) -> None:
    """Collect reads numbers as doubles: beyond a double's range a 422 naming the field, below
    it zero; whatever is stored exports."""
    event_id = _unique("huge")
    body = (
        '{"event_name": "page_view", "event_id": "' + event_id + '", ' + fragment + "}"
    ).encode()
    answer = _post(shared_client, "/v1/api/collect", body)
    assert answer.status_code == status, answer.text[:500]
    if field is not None:
        _validation_error(answer, field)
    batch_id = _unique("huge-batch")
    item = body.replace(event_id.encode(), batch_id.encode())
    answer = _post(shared_client, "/v1/api/collect/batch", b'{"events": [' + item + b"]}")
    assert answer.status_code == 200, answer.text[:500]
    [result] = answer.json()["results"]
    assert result["status"] == ("ok" if status == 204 else "error")
    rows = export(shared_server.database_url, "events")
    stored = [r for r in rows if r["event_id"] in (event_id, batch_id)]
    assert len(stored) == (2 if status == 204 else 0)
