"""Input normalisation and validation through the real server process, on both stores.

README: a click_id is matched case-insensitively; an IPv4-mapped client_ip is stored and placed
as the IPv4 address; a batch without its array is a 400 missing_field; view_time_ms takes a
float without a fraction; report ranges may name any time in the years 1970 to 9999; the
OpenAPI document declares the bounds the server enforces. One server serves the module; each
test looks only at the rows it wrote (unique ids), and a server error logged fails it.
"""

from __future__ import annotations

import re
import uuid
from typing import Any

import httpx
import pytest

from tests.integration.server import (
    ServerProcess,
    error_of,
    export,
    real_click,
)
from thrad_events.ingest.clicklinks import MAX_FIELD_CHARS, MAX_URL_CHARS

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
    """The message of the error's one detail, which names `field`."""
    error = error_of(response, status, code)
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


# -- client_ip --------------------------------------------------------------------------------


def test_an_ipv4_mapped_client_ip_is_stored_and_placed_as_the_ipv4_address(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """`::ffff:81.2.69.142` is the IPv4 address 81.2.69.142: stored so, with its geo (it had
    none, and was stored in the mapped form)."""
    plain_id, mapped_id = _unique("ip-plain"), _unique("ip-mapped")
    for event_id, client_ip in ((plain_id, "81.2.69.142"), (mapped_id, "::FFFF:81.2.69.142")):
        body = {"event_name": "page_view", "event_id": event_id, "client_ip": client_ip}
        assert shared_client.post("/v1/api/collect", json=body).status_code == 204
    order_id = _unique("ip-order")
    conversion = _conversion(
        real_click(shared_server), order_id=order_id, client_ip="::ffff:81.2.69.142"
    )
    assert shared_client.post(CONVERSION, json=conversion).json() == {"status": "ok"}
    url = shared_server.database_url
    events = {
        r["event_id"]: r for r in export(url, "events") if r["event_id"] in (plain_id, mapped_id)
    }
    [converted] = [r for r in export(url, "conversions") if r["order_id"] == order_id]
    plain = events[plain_id]
    assert plain["ip_address"] == "81.2.69.142"
    assert plain["geo_country"] is not None
    for row in (events[mapped_id], converted):
        assert row["ip_address"] == "81.2.69.142"
        assert row["geo_country"] == plain["geo_country"]


# -- batch envelope ---------------------------------------------------------------------------


@pytest.mark.parametrize("body", [{}, {"foo": 1}, {"events": None, "conversions": None}])
@pytest.mark.parametrize(
    ("path", "field"),
    [("/v1/api/collect/batch", "events"), ("/v1/api/conversion/batch", "conversions")],
)
def test_a_batch_without_its_array_is_400_missing_field(
    shared_client: httpx.Client, path: str, field: str, body: dict[str, Any]
) -> None:
    """The array is the batch's one required field: missing or null is a 400 missing_field
    naming it, as for any required field (it was a 422)."""
    _error(shared_client.post(path, json=body), 400, "missing_field", field)


# -- view_time_ms -----------------------------------------------------------------------------


def test_view_time_ms_takes_a_float_without_a_fraction(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    event_id = _unique("view")
    body = {"event_name": "impression", "event_id": event_id, "view_time_ms": 1007.0}
    assert shared_client.post("/v1/api/collect", json=body).status_code == 204
    [row] = [r for r in export(shared_server.database_url, "events") if r["event_id"] == event_id]
    assert row["view_time_ms"] == 1007
    batch = {"events": [{**body, "event_id": _unique("view-batch")}]}
    answer = shared_client.post("/v1/api/collect/batch", json=batch)
    assert answer.json()["totals"] == {"ok": 1, "duplicate": 0, "error": 0}


@pytest.mark.parametrize("value", [1007.5, 0.001, -1.0, 1e300])
def test_view_time_ms_with_a_fraction_or_out_of_range_is_a_422(
    shared_client: httpx.Client, value: float
) -> None:
    body = {"event_name": "impression", "event_id": _unique("view-bad"), "view_time_ms": value}
    answer = shared_client.post("/v1/api/collect", json=body)
    message = _error(answer, 422, "validation_error", "view_time_ms")
    if value == 1007.5:
        assert message == "must be a whole number of milliseconds"


# -- report ranges ----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("since", "until"),
    [("1970-01-01", "1970-01-02"), ("9999-06-01", "9999-12-31T23:59:59Z")],
)
def test_a_report_range_anywhere_in_the_years_1970_to_9999_is_answered(
    shared_client: httpx.Client, since: str, until: str
) -> None:
    """The range error said "between 1970 and 9999" and refused the first week of 1970 and
    the year 9999."""
    answer = shared_client.get("/v1/api/reports/events", params={"since": since, "until": until})
    assert answer.status_code == 200, answer.text
    assert answer.json()["rows"] == [{"events": 0}]


@pytest.mark.parametrize(
    ("name", "value"), [("since", "1969-12-31T23:59:59Z"), ("until", "9999-12-31T23:00-05:00")]
)
def test_a_report_time_outside_the_years_1970_to_9999_says_so(
    shared_client: httpx.Client, name: str, value: str
) -> None:
    answer = shared_client.get("/v1/api/reports/events", params={name: value})
    assert (
        _error(answer, 422, "validation_error", name) == "must be in the years 1970 to 9999 (UTC)"
    )


# -- the OpenAPI document ---------------------------------------------------------------------


def _parameters(document: dict[str, Any], path: str) -> dict[str, dict[str, Any]]:
    return {p["name"]: p["schema"] for p in document["paths"][path]["get"]["parameters"]}


def test_openapi_declares_what_the_click_link_and_report_parameters_enforce(
    shared_server: ServerProcess,
) -> None:
    document = httpx.get(f"{shared_server.base_url}/openapi.json", timeout=10).json()
    link = _parameters(document, "/v1/click")
    assert link["url"]["maxLength"] == MAX_URL_CHARS
    assert re.search(link["url"]["pattern"], "https://shop.example.com/p?q=1")
    assert not re.search(link["url"]["pattern"], "javascript:alert(1)")
    for name in ("tag_id", "campaign_id", "ad_id", "bid_id", "impression_id"):
        assert link[name]["maxLength"] == MAX_FIELD_CHARS
    assert link["sig"]["pattern"] == "^[0-9a-f]{64}$"

    report = _parameters(document, "/v1/api/reports/conversions")
    assert (report["limit"]["minimum"], report["limit"]["maximum"]) == (1, 10_000)
    group_by, filters = report["group_by"]["items"]["pattern"], report["filter"]["items"]["pattern"]
    for accepted in ("day", "currency,campaign_id", " day , params.extra.tier"):
        assert re.search(group_by, accepted), accepted
    for refused in ("user_agent", "event_name", "params.a b"):
        assert not re.search(group_by, refused), refused
    assert report["filter"]["maxItems"] == 50
    assert re.search(filters, "currency:USD")
    for refused in ("day:2026-02-19", "currency:", "currency:" + "x" * 257, "ip_address:1"):
        assert not re.search(filters, refused), refused
