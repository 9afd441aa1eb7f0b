"""Input normalisation and validation through the real server process, on both stores.

README: a click_id is matched case-insensitively; an IPv4-mapped client_ip is stored and placed
as the IPv4 address; a batch without its array is a 400 missing_field; view_time_ms takes a
float without a fraction; report ranges may name any time in the years 1970 to 9999; the
OpenAPI document declares the bounds the server enforces. One server serves the module; each
test looks only at the rows it wrote (unique ids), and a server error logged fails it.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.integration.server import ServerProcess, export, real_click

CONVERSION = "/v1/api/conversion"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _conversion(click_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "click_id": click_id,
        "conversion_time": "2026-02-19T18:00:00Z",
        "conversion_value": 49.99,
        "currency": "USD",
        **fields,
    }


def _error(response: httpx.Response, status: int, code: str, field: str) -> str:
    assert response.status_code == status, response.text[:500]
    error = response.json()["error"]
    assert error["code"] == code, error
    [detail] = error["details"]
    assert detail["field"] == field, error
    message: str = detail["message"]
    return message


# -- click_id ---------------------------------------------------------------------------------


def test_an_upper_case_click_id_is_the_same_click_and_the_same_order(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """RFC 9562: a UUID's hex digits are case-insensitive. The upper-case spelling finds the
    click (it was a 404 click_not_found), is stored in the canonical lower case, and dedupes
    (click_id, event_type, order_id) against the lower-case spelling."""
    click_id = real_click(shared_server)
    order_id = _unique("case")
    upper = shared_client.post(CONVERSION, json=_conversion(click_id.upper(), order_id=order_id))
    assert upper.json() == {"status": "ok"}, upper.text
    lower = shared_client.post(CONVERSION, json=_conversion(click_id, order_id=order_id))
    assert lower.json() == {"status": "duplicate"}
    rows = [
        r for r in export(shared_server.database_url, "conversions") if r["order_id"] == order_id
    ]
    assert [r["click_id"] for r in rows] == [click_id]


def test_an_event_names_its_click_in_the_canonical_lower_case(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Events join their click in the funnel report: the stored click_id is the lower case one;
    an id that is no UUID is kept as sent."""
    click_id = real_click(shared_server)
    ids = {_unique("ev-uuid"): click_id.upper(), _unique("ev-own"): "Partner-Click-7"}
    for event_id, sent in ids.items():
        body = {"event_name": "page_view", "event_id": event_id, "click_id": sent}
        assert shared_client.post("/v1/api/collect", json=body).status_code == 204
    stored = {
        r["event_id"]: r["click_id"]
        for r in export(shared_server.database_url, "events")
        if r["event_id"] in ids
    }
    assert stored == dict(zip(ids, [click_id, "Partner-Click-7"], strict=True))
