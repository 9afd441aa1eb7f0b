"""Reports: known rows in, exact numbers out, for every grouping and filter, through the store,
the HTTP endpoints and the CLI.

Seeds: params are "queryable in reporting" (Events API); the issue: counts by any field or params
key, conversions with exact revenue per currency joined to the click's campaign and ad, the
click funnel; a partner's key sees only its own partner's rows, THRAD_ADMIN_TOKEN all of them.
"""

from __future__ import annotations

import asyncio
import csv
import dataclasses
import io
import json
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server import ServerProcess, cli, create_key, real_click, running_server
from thrad_events.deadline import Deadline
from thrad_events.reports.query import FIELDS, Report, parse_report_query
from thrad_events.reports.run import answer
from thrad_events.store import open_store
from thrad_events.store.base import Store

A, B = "ptn_a", "ptn_b"
SINCE, UNTIL = "2026-02-18T00:00:00Z", "2026-02-20T00:00:00Z"
ADMIN_TOKEN = "admin-" + "x" * 32


def at(text: str) -> datetime:
    return datetime.fromisoformat(text).replace(tzinfo=UTC)


def event(partner: str, received: str, name: str, tag: str, **fields: Any) -> dict[str, Any]:
    return {
        "received_at": at(received),
        "partner_id": partner,
        "event_name": name,
        "tag_id": tag,
        "timestamp": 1771879200,
        "channel": "server",
        "params": {"integration": "partner_s2s", "partner_id": partner, **fields.pop("params", {})},
        **fields,
    }


# Partner A has events 1-5 in the range, B has event 6; 7 and 8 fall just outside it.
EVENTS = [
    event(A, "2026-02-18T10:15:00", "page_view", "adv_001", geo_country="US", ua_browser="Chrome",
          ua_device_type="desktop", params={"step": "shipping"}),
    event(A, "2026-02-18T10:45:00", "page_view", "adv_001", geo_country="US", ua_browser="Firefox",
          ua_device_type="desktop", params={"step": "payment"}),
    event(A, "2026-02-18T11:05:00", "items_added", "adv_002", geo_country="DE", ua_browser="Chrome",
          ua_device_type="mobile", params={"step": "shipping", "quantity": 2}),
    event(A, "2026-02-19T09:00:00", "page_view", "adv_002", params={"flag": True}),
    event(A, "2026-02-19T09:30:00", "checkout_started", "adv_001", geo_country="US",
          ua_browser="Chrome", ua_device_type="mobile", click_id="k4",
          params={"step": "shipping", "quantity": "2", "nested": {"tier": "gold"}}),
    event(B, "2026-02-19T09:10:00", "page_view", "adv_001", geo_country="FR", ua_browser="Safari",
          ua_device_type="tablet", click_id="k1", params={"step": "shipping"}),
    event(A, "2026-02-20T00:00:00", "page_view", "adv_001"),
    event(A, "2026-02-17T23:59:59.999999", "page_view", "adv_001"),
]  # fmt: skip


def click(
    click_id: str, received: str, campaign: str | None, ad: str | None, tag: str | None
) -> dict[str, Any]:
    return {
        "click_id": click_id,
        "received_at": at(received),
        "expires_at": 0,
        "landing_url": "https://shop.example.com/",
        "tag_id": tag,
        "campaign_id": campaign,
        "ad_id": ad,
    }


CLICKS = [
    click("k1", "2026-02-18T08:00:00", "c1", "a1", "adv_001"),
    click("k2", "2026-02-18T09:00:00", "c1", "a2", "adv_001"),
    click("k3", "2026-02-19T08:00:00", "c2", "a3", "adv_002"),
    click("k4", "2026-02-19T08:30:00", "c2", "a3", None),
    click("k5", "2026-02-19T12:00:00", None, None, "adv_002"),
]


def conversion(
    partner: str, received: str, click_id: str, time: str, value: str, currency: str, **fields: Any
) -> dict[str, Any]:
    return {
        "received_at": at(received),
        "partner_id": partner,
        "click_id": click_id,
        "conversion_time": time,
        "conversion_value": Decimal(value),
        "currency": currency,
        "event_type": "purchase_completed",
        "order_id": f"{click_id}-{received}",
        "channel": "server",
        "params": {"integration": "partner_s2s", **fields.pop("params", {})},
        **fields,
    }


CONVERSIONS = [
    conversion(A, "2026-02-18T08:30:00", "k1", "2026-02-18T08:30:00Z", "0.1", "USD",
               tag_id="adv_001"),
    conversion(A, "2026-02-18T12:00:00", "k1", "2026-02-18T12:00:00Z", "0.2", "USD",
               tag_id="adv_001"),
    conversion(A, "2026-02-19T10:00:00", "k3", "2026-02-19T10:00:00Z", "49.99", "EUR",
               tag_id="adv_002", event_type="subscription_created",
               params={"extra": {"customer_tier": "gold"}}),
    conversion(B, "2026-02-19T11:00:00", "k2", "2026-02-19T09:00:00Z", "10", "USD",
               tag_id="adv_001"),
    conversion(A, "2026-02-19T13:00:00", "k5", "2026-02-19T13:00:00.5Z", "1E+2", "USD"),
]  # fmt: skip


async def _load(store: Store) -> None:
    await store.start()
    try:
        for row in CLICKS:
            await store.insert_click(row)
        await store.insert_events(EVENTS)
        await store.insert_conversions(CONVERSIONS)
    finally:
        await store.close()


@pytest.fixture
def store(database_url: str) -> Iterator[Store]:
    """The store holding the rows above."""
    opened = open_store(database_url, write_timeout_s=30)
    opened.migrate()
    asyncio.run(_load(opened))
    try:
        yield opened
    finally:
        opened.close_sync()


def rows(
    store: Store, report: Report, *items: tuple[str, str], partner: str | None = A
) -> list[dict[str, Any]]:
    # The rows above are placed by their receive time; test_report_time_basis.py covers the
    # event time.
    given = [("since", SINCE), ("until", UNTIL), ("time_basis", "received"), *items]
    query = parse_report_query(report, given, partner_id=partner, now=at(UNTIL))
    return answer(store, query, Deadline.after(30)).rows


def counts(found: list[dict[str, Any]], field: str) -> dict[Any, int]:
    return {row[field]: row["events"] for row in found}


# Partner A's five events in the range, grouped by each field.
EVENTS_BY: dict[str, dict[Any, int]] = {
    "day": {"2026-02-18": 3, "2026-02-19": 2},
    "hour": {"2026-02-18T10:00:00Z": 2, "2026-02-18T11:00:00Z": 1, "2026-02-19T09:00:00Z": 2},
    "event_name": {"checkout_started": 1, "items_added": 1, "page_view": 3},
    "tag_id": {"adv_001": 3, "adv_002": 2},
    "channel": {"server": 5},
    "geo_country": {None: 1, "DE": 1, "US": 3},
    "ua_browser": {None: 1, "Chrome": 3, "Firefox": 1},
    "ua_device_type": {None: 1, "desktop": 2, "mobile": 2},
    "partner_id": {A: 5},
    "params.step": {None: 1, "payment": 1, "shipping": 3},
    # A number and a string with the same text are one group, as PostgreSQL's ->> has them.
    "params.quantity": {None: 3, "2": 2},
    "params.flag": {None: 4, "true": 1},
    "params.nested.tier": {None: 4, "gold": 1},
    "params.integration": {"partner_s2s": 5},
}


@pytest.mark.parametrize(
    "field", [*FIELDS[Report.EVENTS], "params.step", "params.quantity", "params.flag",
              "params.nested.tier", "params.integration"],
)  # fmt: skip
def test_events_grouped_by_every_field(store: Store, field: str) -> None:
    found = rows(store, Report.EVENTS, ("group_by", field))
    assert counts(found, field) == EVENTS_BY[field]
    # Ordered by the group value, null first.
    assert list(counts(found, field)) == list(EVENTS_BY[field])


# One filter per field (and a few params keys), each with partner A's count.
EVENT_FILTERS = [
    ("event_name:page_view", 3),
    ("tag_id:adv_002", 2),
    ("channel:server", 5),
    ("channel:browser", 0),
    ("geo_country:US", 3),
    ("ua_browser:Chrome", 3),
    ("ua_device_type:mobile", 2),
    ("partner_id:ptn_a", 5),
    ("partner_id:ptn_b", 0),
    ("params.step:shipping", 3),
    ("params.quantity:2", 2),
    ("params.flag:true", 1),
    ("params.nested.tier:gold", 1),
    ("params.missing:x", 0),
]


@pytest.mark.parametrize(
    ("entry", "expected"),
    [
        (entry, expected)
        for entry, expected in EVENT_FILTERS
        if entry.startswith("params.") or entry.split(":")[0] in FIELDS[Report.EVENTS]
    ],
)
def test_events_filtered_by_every_field(store: Store, entry: str, expected: int) -> None:
    assert rows(store, Report.EVENTS, ("filter", entry)) == [{"events": expected}]


def test_every_events_field_has_an_expected_grouping_and_filter() -> None:
    assert set(FIELDS[Report.EVENTS]) <= set(EVENTS_BY)
    filtered = {entry.split(":")[0] for entry, _ in EVENT_FILTERS}
    assert set(FIELDS[Report.EVENTS]) - {"day", "hour"} <= filtered


def test_filters_on_one_field_are_alternatives_and_on_several_all_apply(store: Store) -> None:
    either = rows(
        store, Report.EVENTS, ("filter", "event_name:page_view"), ("filter", "event_name:x")
    )
    assert either == [{"events": 3}]
    both = rows(
        store,
        Report.EVENTS,
        ("group_by", "day,event_name"),
        ("filter", "tag_id:adv_001"),
        ("filter", "params.step:shipping"),
    )
    assert both == [
        {"day": "2026-02-18", "event_name": "page_view", "events": 1},
        {"day": "2026-02-19", "event_name": "checkout_started", "events": 1},
    ]


def test_the_range_is_since_inclusive_until_exclusive_on_received_at(store: Store) -> None:
    assert rows(store, Report.EVENTS) == [{"events": 5}]
    assert rows(store, Report.EVENTS, partner=None) == [{"events": 6}]
    wide = parse_report_query(
        Report.EVENTS,
        [
            ("since", "2026-02-17T23:59:59.999999Z"),
            ("until", "2026-02-20T00:00:00.000001Z"),
            ("time_basis", "received"),
        ],
        partner_id=A,
        now=at(UNTIL),
    )
    assert answer(store, wide, Deadline.after(30)).rows == [{"events": 7}]


def test_a_partner_sees_only_its_own_events_an_operator_all(store: Store) -> None:
    assert counts(
        rows(store, Report.EVENTS, ("group_by", "partner_id"), partner=B), "partner_id"
    ) == {B: 1}
    assert counts(
        rows(store, Report.EVENTS, ("group_by", "partner_id"), partner=None), "partner_id"
    ) == {A: 5, B: 1}
    assert counts(
        rows(store, Report.EVENTS, ("group_by", "geo_country"), partner=B), "geo_country"
    ) == {"FR": 1}


def test_limit_cuts_the_groups_and_says_so(store: Store) -> None:
    query = parse_report_query(
        Report.EVENTS,
        [
            ("since", SINCE),
            ("until", UNTIL),
            ("time_basis", "received"),
            ("group_by", "hour"),
            ("limit", "2"),
        ],
        partner_id=A,
        now=at(UNTIL),
    )
    cut = answer(store, query, Deadline.after(30))
    assert [row["hour"] for row in cut.rows] == ["2026-02-18T10:00:00Z", "2026-02-18T11:00:00Z"]
    assert cut.truncated
    whole = answer(store, dataclasses.replace(query, limit=3), Deadline.after(30))
    assert not whole.truncated


# -- conversions --------------------------------------------------------------------------------


def revenue(found: list[dict[str, Any]], field: str) -> dict[Any, tuple[int, dict[str, str]]]:
    return {row[field]: (row["conversions"], row["revenue"]) for row in found}


CONVERSIONS_BY: dict[str, dict[Any, tuple[int, dict[str, str]]]] = {
    "day": {"2026-02-18": (2, {"USD": "0.3"}), "2026-02-19": (2, {"EUR": "49.99", "USD": "100"})},
    "hour": {
        "2026-02-18T08:00:00Z": (1, {"USD": "0.1"}),
        "2026-02-18T12:00:00Z": (1, {"USD": "0.2"}),
        "2026-02-19T10:00:00Z": (1, {"EUR": "49.99"}),
        "2026-02-19T13:00:00Z": (1, {"USD": "100"}),
    },
    "tag_id": {None: (1, {"USD": "100"}), "adv_001": (2, {"USD": "0.3"}),
               "adv_002": (1, {"EUR": "49.99"})},
    "event_type": {"purchase_completed": (3, {"USD": "100.3"}),
                   "subscription_created": (1, {"EUR": "49.99"})},
    "currency": {"EUR": (1, {"EUR": "49.99"}), "USD": (3, {"USD": "100.3"})},
    "channel": {"server": (4, {"EUR": "49.99", "USD": "100.3"})},
    "partner_id": {A: (4, {"EUR": "49.99", "USD": "100.3"})},
    "campaign_id": {None: (1, {"USD": "100"}), "c1": (2, {"USD": "0.3"}),
                    "c2": (1, {"EUR": "49.99"})},
    "ad_id": {None: (1, {"USD": "100"}), "a1": (2, {"USD": "0.3"}), "a3": (1, {"EUR": "49.99"})},
    "params.extra.customer_tier": {None: (3, {"USD": "100.3"}), "gold": (1, {"EUR": "49.99"})},
}  # fmt: skip


@pytest.mark.parametrize("field", [*FIELDS[Report.CONVERSIONS], "params.extra.customer_tier"])
def test_conversions_grouped_by_every_field(store: Store, field: str) -> None:
    found = rows(store, Report.CONVERSIONS, ("group_by", field))
    assert revenue(found, field) == CONVERSIONS_BY[field]
    assert list(revenue(found, field)) == list(CONVERSIONS_BY[field])


# One filter per field (and a params key), each with partner A's conversions and revenue.
CONVERSION_FILTERS = [
    ("tag_id:adv_001", (2, {"USD": "0.3"})),
    ("event_type:subscription_created", (1, {"EUR": "49.99"})),
    ("currency:USD", (3, {"USD": "100.3"})),
    ("channel:server", (4, {"EUR": "49.99", "USD": "100.3"})),
    ("partner_id:ptn_a", (4, {"EUR": "49.99", "USD": "100.3"})),
    ("campaign_id:c1", (2, {"USD": "0.3"})),
    ("ad_id:a3", (1, {"EUR": "49.99"})),
    ("params.extra.customer_tier:gold", (1, {"EUR": "49.99"})),
    ("campaign_id:nope", (0, {})),
]


@pytest.mark.parametrize(("entry", "expected"), CONVERSION_FILTERS)
def test_conversions_filtered_by_every_field(
    store: Store, entry: str, expected: tuple[int, dict[str, str]]
) -> None:
    (row,) = rows(store, Report.CONVERSIONS, ("filter", entry))
    assert (row["conversions"], row["revenue"]) == expected


def test_every_conversions_field_has_an_expected_grouping_and_filter() -> None:
    assert set(FIELDS[Report.CONVERSIONS]) <= set(CONVERSIONS_BY)
    filtered = {entry.split(":")[0] for entry, _ in CONVERSION_FILTERS}
    assert set(FIELDS[Report.CONVERSIONS]) - {"day", "hour"} <= filtered


def test_revenue_is_exact_per_currency_0_1_plus_0_2_is_0_3(store: Store) -> None:
    (first_day,) = rows(store, Report.CONVERSIONS, ("filter", "campaign_id:c1"))
    assert first_day["revenue"] == {"USD": "0.3"}
    # The operator also sees B's 10 USD on c1: 0.1 + 0.2 + 10.
    operator = rows(store, Report.CONVERSIONS, ("group_by", "campaign_id"), partner=None)
    assert revenue(operator, "campaign_id")["c1"] == (3, {"USD": "10.3"})
    assert rows(store, Report.CONVERSIONS, partner=B) == [
        {"conversions": 1, "revenue": {"USD": "10"}}
    ]


# -- funnel -------------------------------------------------------------------------------------


def funnel(found: list[dict[str, Any]]) -> dict[Any, tuple[Any, ...]]:
    return {
        row["campaign_id"]: (
            row["clicks"],
            row["converted_clicks"],
            row["conversions"],
            row["conversion_rate"],
            row["time_to_convert_s"],
        )
        for row in found
    }


def test_funnel_for_an_operator_counts_every_click_and_conversion(store: Store) -> None:
    assert funnel(rows(store, Report.FUNNEL, partner=None)) == {
        # k5 converted 3600.5 s after its click: whole seconds, the fraction dropped.
        None: (1, 1, 1, 1.0, {"p50": 3600.0, "p90": 3600.0, "p99": 3600.0}),
        # k1 after 1800 s (A), k2 after 86400 s (B); k1's second conversion is not its first.
        "c1": (2, 2, 3, 1.0, {"p50": 44100.0, "p90": 77940.0, "p99": 85554.0}),
        "c2": (2, 1, 1, 0.5, {"p50": 7200.0, "p90": 7200.0, "p99": 7200.0}),
    }


def test_funnel_for_a_partner_counts_the_clicks_its_own_rows_carry(store: Store) -> None:
    # A: k1, k3, k5 through its conversions, k4 through its event; k2 is only B's.
    assert funnel(rows(store, Report.FUNNEL)) == {
        None: (1, 1, 1, 1.0, {"p50": 3600.0, "p90": 3600.0, "p99": 3600.0}),
        "c1": (1, 1, 2, 1.0, {"p50": 1800.0, "p90": 1800.0, "p99": 1800.0}),
        "c2": (2, 1, 1, 0.5, {"p50": 7200.0, "p90": 7200.0, "p99": 7200.0}),
    }
    # B: k2 through its conversion, k1 through its event, which B did not convert.
    assert funnel(rows(store, Report.FUNNEL, partner=B)) == {
        "c1": (2, 1, 1, 0.5, {"p50": 86400.0, "p90": 86400.0, "p99": 86400.0}),
    }
    assert rows(store, Report.FUNNEL, partner="ptn_nobody") == []


# Every click in the range (an operator's view) by each field: (clicks, converted clicks).
FUNNEL_BY: dict[str, dict[Any, tuple[int, int]]] = {
    "campaign_id": {None: (1, 1), "c1": (2, 2), "c2": (2, 1)},
    "ad_id": {None: (1, 1), "a1": (1, 1), "a2": (1, 1), "a3": (2, 1)},
    "tag_id": {None: (1, 0), "adv_001": (2, 2), "adv_002": (2, 2)},
    "day": {"2026-02-18": (2, 2), "2026-02-19": (3, 2)},
    "hour": {
        "2026-02-18T08:00:00Z": (1, 1),
        "2026-02-18T09:00:00Z": (1, 1),
        "2026-02-19T08:00:00Z": (2, 1),
        "2026-02-19T12:00:00Z": (1, 1),
    },
}
FUNNEL_FILTERS = [
    ("campaign_id:c2", {"c2": (2, 1)}),
    ("ad_id:a3", {"c2": (2, 1)}),
    ("tag_id:adv_001", {"c1": (2, 2)}),
    ("tag_id:none", {}),
]


@pytest.mark.parametrize("field", list(FIELDS[Report.FUNNEL]))
def test_funnel_grouped_by_every_field(store: Store, field: str) -> None:
    found = rows(store, Report.FUNNEL, ("group_by", field), partner=None)
    by = {row[field]: (row["clicks"], row["converted_clicks"]) for row in found}
    assert by == FUNNEL_BY[field]
    assert list(by) == list(FUNNEL_BY[field])


@pytest.mark.parametrize(("entry", "expected"), FUNNEL_FILTERS)
def test_funnel_filtered_by_every_field(
    store: Store, entry: str, expected: dict[str, tuple[int, int]]
) -> None:
    found = rows(store, Report.FUNNEL, ("filter", entry), partner=None)
    assert {row["campaign_id"]: (row["clicks"], row["converted_clicks"]) for row in found} == (
        expected
    )


def test_every_funnel_field_has_an_expected_grouping_and_filter() -> None:
    assert set(FIELDS[Report.FUNNEL]) <= set(FUNNEL_BY)
    filtered = {entry.split(":")[0] for entry, _ in FUNNEL_FILTERS}
    assert set(FIELDS[Report.FUNNEL]) - {"day", "hour"} <= filtered


def test_funnel_groups_and_filters_by_the_click(store: Store) -> None:
    found = rows(
        store,
        Report.FUNNEL,
        ("group_by", "day,ad_id"),
        ("filter", "campaign_id:c2"),
        partner=None,
    )
    assert [
        (row["day"], row["ad_id"], row["clicks"], row["converted_clicks"]) for row in found
    ] == [("2026-02-19", "a3", 2, 1)]
    by_hour = rows(store, Report.FUNNEL, ("group_by", "hour"), ("filter", "ad_id:a1"), partner=None)
    assert [(row["hour"], row["clicks"]) for row in by_hour] == [("2026-02-18T08:00:00Z", 1)]
    unconverted = rows(store, Report.FUNNEL, ("filter", "ad_id:a2"), partner=A)
    assert unconverted == []


# -- over HTTP and the CLI ------------------------------------------------------------------------


@pytest.fixture(scope="module")
def report_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    """One server for the HTTP tests, with THRAD_ADMIN_TOKEN; each test uses partners of its own."""
    folder: Path = tmp_path_factory.mktemp("reports")
    with running_server(
        f"sqlite:///{folder / 'thrad.db'}",
        folder / "server.log",
        env={"THRAD_ADMIN_TOKEN": ADMIN_TOKEN},
    ) as process:
        yield process


def get(server: ServerProcess, token: str, report: str, **params: Any) -> httpx.Response:
    return httpx.get(
        f"{server.base_url}/v1/api/reports/{report}",
        params=params,
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )


def collect(server: ServerProcess, key: str, **body: Any) -> None:
    answer = httpx.post(
        f"{server.base_url}/v1/api/collect",
        json=body,
        headers={"Authorization": f"Bearer {key}"},
        timeout=10,
    )
    assert answer.status_code == 204, answer.text


def test_http_partner_keys_see_their_own_rows_the_admin_token_all(
    report_server: ServerProcess,
) -> None:
    url = report_server.database_url
    acme = create_key(url, "http-acme", "k")
    mallory = create_key(url, "http-mallory", "k")
    for step in ("shipping", "shipping", "payment"):
        collect(report_server, acme["api_key"], event_name="page_view", tag_id="iso-t",
                params={"step": step})  # fmt: skip
    collect(report_server, mallory["api_key"], event_name="page_view", tag_id="iso-t",
            params={"step": "shipping"})  # fmt: skip
    query = {"group_by": "params.step", "filter": "tag_id:iso-t"}

    own = get(report_server, acme["api_key"], "events", **query)
    assert own.status_code == 200
    assert own.headers["cache-control"] == "private, no-store"
    body = own.json()
    assert body["partner_id"] == acme["partner_id"]
    assert body["rows"] == [
        {"params.step": "payment", "events": 1},
        {"params.step": "shipping", "events": 2},
    ]
    assert body["group_by"] == ["params.step"]
    assert body["filters"] == [{"field": "tag_id", "values": ["iso-t"]}]
    assert body["truncated"] is False

    theirs = get(report_server, mallory["api_key"], "events", **query).json()["rows"]
    assert theirs == [{"params.step": "shipping", "events": 1}]

    everyone = get(
        report_server, ADMIN_TOKEN, "events", group_by="partner_id", filter="tag_id:iso-t"
    )
    assert everyone.json()["partner_id"] is None
    assert {row["partner_id"]: row["events"] for row in everyone.json()["rows"]} == {
        acme["partner_id"]: 3,
        mallory["partner_id"]: 1,
    }
    one = get(report_server, ADMIN_TOKEN, "events", partner_id=mallory["partner_id"], **query)
    assert one.json()["rows"] == theirs

    other = get(report_server, acme["api_key"], "events", partner_id=mallory["partner_id"])
    assert other.status_code == 403
    assert other.json()["error"]["code"] == "forbidden"
    assert other.json()["error"]["details"][0]["field"] == "partner_id"
    mine = get(report_server, acme["api_key"], "events", partner_id=acme["partner_id"], **query)
    assert mine.json()["rows"] == body["rows"]


def _click_id(server: ServerProcess, campaign: str) -> str:
    return real_click(server, "--campaign-id", campaign, "--ad-id", "ad-1")


def test_http_conversions_revenue_is_exact_and_joins_the_click_and_the_funnel(
    report_server: ServerProcess,
) -> None:
    key = create_key(report_server.database_url, "http-money", "k")["api_key"]
    converted, idle = _click_id(report_server, "cmp-money"), _click_id(report_server, "cmp-money")
    for order, value in (("o-1", 0.1), ("o-2", 0.2)):
        answer = httpx.post(
            f"{report_server.base_url}/v1/api/conversion",
            json={"click_id": converted, "conversion_time": "2026-02-19T18:00:00Z",
                  "conversion_value": value, "currency": "usd", "order_id": order},
            headers={"Authorization": f"Bearer {key}"},
        )  # fmt: skip
        assert answer.json() == {"status": "ok"}
    collect(report_server, key, event_name="page_view", click_id=idle)

    # The conversion_time sent is long past: the receive time puts the rows in the default range.
    found = get(
        report_server,
        key,
        "conversions",
        group_by="campaign_id,ad_id,currency",
        time_basis="received",
    )
    assert found.status_code == 200
    assert found.json()["rows"] == [
        {"campaign_id": "cmp-money", "ad_id": "ad-1", "currency": "USD", "conversions": 2,
         "revenue": {"USD": "0.3"}}
    ]  # fmt: skip

    (row,) = get(report_server, key, "funnel").json()["rows"]
    assert row["campaign_id"] == "cmp-money"
    assert (row["clicks"], row["converted_clicks"], row["conversions"]) == (2, 1, 2)
    assert row["conversion_rate"] == 0.5
    # conversion_time is before the click in this test: clock skew counts as converting at once.
    assert row["time_to_convert_s"] == {"p50": 0.0, "p90": 0.0, "p99": 0.0}


@pytest.mark.parametrize(
    ("params", "status", "field"),
    [
        ({"group_by": "user_agent"}, 422, "group_by"),
        ({"group_by": "params.a'b"}, 422, "group_by"),
        ({"filter": "params.step"}, 422, "filter"),
        ({"since": "last week"}, 422, "since"),
        ({"since": "2026-02-20", "until": "2026-02-19"}, 422, "since"),
        ({"limit": "0"}, 422, "limit"),
        ({"grup_by": "day"}, 422, "grup_by"),
        ({"time_basis": "clicked"}, 422, "time_basis"),
    ],
)
def test_http_bad_parameters_are_422_naming_the_parameter(
    report_server: ServerProcess, params: dict[str, str], status: int, field: str
) -> None:
    key = create_key(report_server.database_url, "http-bad", "k")["api_key"]
    answer = get(report_server, key, "events", **params)
    assert answer.status_code == status
    error = answer.json()["error"]
    assert error["code"] == "validation_error"
    assert error["details"][0]["field"] == field


def test_http_reports_need_a_valid_key_and_count_against_its_rate_limit(
    report_server: ServerProcess,
) -> None:
    assert get(report_server, "thr_unknown", "events").status_code == 401
    missing = httpx.get(f"{report_server.base_url}/v1/api/reports/funnel")
    assert missing.status_code == 401
    assert missing.headers["www-authenticate"].startswith("Bearer")
    key = create_key(report_server.database_url, "http-limited", "k", "--rate-limit", "1")
    statuses = [get(report_server, key["api_key"], "events").status_code for _ in range(3)]
    assert statuses[0] == 200
    assert 429 in statuses


def test_http_without_an_admin_token_configured_there_is_no_operator_access(
    server: ServerProcess,
) -> None:
    answer = get(server, ADMIN_TOKEN, "events")
    assert answer.status_code == 401


def test_http_reports_are_in_the_openapi_document(report_server: ServerProcess) -> None:
    document = httpx.get(f"{report_server.base_url}/openapi.json").json()
    for report in ("events", "conversions", "funnel"):
        operation = document["paths"][f"/v1/api/reports/{report}"]["get"]
        names = {"names"} if report != "funnel" else set()
        assert {p["name"] for p in operation["parameters"]} == {
            "since", "until", "time_basis", "group_by", "filter", "limit", "partner_id",
            "include_test", *names,
        }  # fmt: skip
        assert {"200", "401", "403", "422", "429", "503"} <= set(operation["responses"])
    assert "FunnelReportRow" in document["components"]["schemas"]


def test_cli_report_prints_the_same_numbers_as_a_table_json_and_csv(
    report_server: ServerProcess,
) -> None:
    url = report_server.database_url
    key = create_key(url, "cli-acme", "k")
    for name in ("signup_started", "page_view", "page_view"):
        collect(report_server, key["api_key"], event_name=name, tag_id="cli-t")

    options = ("--group-by", "event_name", "--filter", "tag_id:cli-t", "--partner", "cli-acme")
    as_json = json.loads(cli(url, "report", "events", *options, "--json"))
    over_http = get(report_server, key["api_key"], "events", group_by="event_name",
                    filter="tag_id:cli-t").json()  # fmt: skip
    assert (
        as_json["rows"]
        == over_http["rows"]
        == [
            {"event_name": "page_view", "events": 2},
            {"event_name": "signup_started", "events": 1},
        ]
    )
    assert as_json["partner_id"] == key["partner_id"]

    as_csv = list(csv.reader(io.StringIO(cli(url, "report", "events", *options, "--csv"))))
    assert as_csv == [["event_name", "events"], ["page_view", "2"], ["signup_started", "1"]]

    table = cli(url, "report", "events", *options)
    assert "signup_started" in table
    assert f"partner {key['partner_id']}" in table

    everyone = json.loads(cli(url, "report", "events", "--filter", "tag_id:cli-t", "--json"))
    assert everyone["partner_id"] is None
    assert everyone["rows"] == [{"events": 3}]


def test_cli_report_refuses_what_the_endpoint_refuses(report_server: ServerProcess) -> None:
    url = report_server.database_url
    with pytest.raises(RuntimeError, match="not a field of the funnel report"):
        cli(url, "report", "funnel", "--group-by", "event_name")
    with pytest.raises(RuntimeError, match="no partner"):
        cli(url, "report", "events", "--partner", "nobody-at-all")
