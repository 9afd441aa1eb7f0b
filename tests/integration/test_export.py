"""`thrad-events export events|conversions|clicks [--format jsonl|csv] [--since ISO8601]`.

Contract: "Export rows use the request's own field names (...), plus received_at, partner_id,
and the enrichment (ip_address, sender_ip, geo_*, ua_*)." One server serves the module; each
test looks only at the rows it wrote (unique ids).
"""

from __future__ import annotations

import json
import time
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import httpx
import pytest

from tests.integration.server import (
    ServerProcess,
    cli,
    create_key,
    export,
    export_csv,
    real_click,
    unique_name,
)

ENRICHMENT = [
    "ip_address",
    "sender_ip",
    "geo_country",
    "geo_region",
    "geo_city",
    "geo_lat",
    "geo_lon",
    "ua_browser",
    "ua_os",
    "ua_device",
]
EVENT_FIELDS = [
    "event_name",
    "tag_id",
    "event_id",
    "timestamp",
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
    "view_time_ms",
    "consent",
    "params",
    "received_at",
    "partner_id",
    *ENRICHMENT,
]
CONVERSION_FIELDS = [
    "click_id",
    "conversion_time",
    "conversion_value",
    "currency",
    "event_type",
    "order_id",
    "event_id",
    "idempotency_key",
    "page_url",
    "referrer",
    "user_agent",
    "channel",
    "session_id",
    "client_id",
    "tag_id",
    "consent",
    "params",
    "received_at",
    "partner_id",
    *ENRICHMENT,
]


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _collect(client: httpx.Client, event_id: str, **fields: Any) -> None:
    body = {"event_name": "page_view", "tag_id": "adv_001", "event_id": event_id, **fields}
    response = client.post("/v1/api/collect", json=body)
    assert response.status_code == 204, response.text


def _conversion(client: httpx.Client, click_id: str, order_id: str) -> None:
    body = {
        "click_id": click_id,
        "conversion_time": "2026-02-19T18:00:00Z",
        "conversion_value": 49.99,
        "currency": "usd",
        "order_id": order_id,
    }
    response = client.post("/v1/api/conversion", json=body, headers={"Idempotency-Key": order_id})
    assert response.json() == {"status": "ok"}


def _mine(rows: list[Any], field: str, values: set[str]) -> list[Any]:
    return [row for row in rows if row[field] in values]


def test_events_csv_header_has_the_contracts_names(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Contract: export rows use the request's own field names plus received_at, partner_id
    and the enrichment; the CSV header names them."""
    event_id = _unique("csv")
    _collect(shared_client, event_id, params={"step": "shipping"})
    header, rows = export_csv(shared_server.database_url, "events")
    assert len(header) == len(set(header))
    assert set(EVENT_FIELDS) <= set(header)
    [row] = _mine(rows, "event_id", {event_id})
    assert row["event_name"] == "page_view"
    assert row["channel"] == "server"
    assert json.loads(row["params"])["step"] == "shipping"


def test_events_csv_and_jsonl_have_the_same_fields(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Both formats carry the same fields, under the same names, in the same order."""
    event_id = _unique("both")
    _collect(shared_client, event_id)
    header, _ = export_csv(shared_server.database_url, "events")
    [row] = _mine(export(shared_server.database_url, "events"), "event_id", {event_id})
    assert list(row) == header


def test_conversions_csv_header_has_the_contracts_names_and_exact_money(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Contract: conversions export also conversion_time, conversion_value, currency,
    event_type, order_id, idempotency_key; money keeps its digits ("49.99")."""
    order_id = _unique("order-csv")
    _conversion(shared_client, real_click(shared_server), order_id)
    header, rows = export_csv(shared_server.database_url, "conversions")
    assert len(header) == len(set(header))
    assert set(CONVERSION_FIELDS) <= set(header)
    [row] = _mine(rows, "order_id", {order_id})
    assert row["conversion_value"] == "49.99"
    assert row["currency"] == "USD"
    assert row["idempotency_key"] == order_id
    assert row["conversion_time"] == "2026-02-19T18:00:00Z"


def test_conversions_jsonl_has_the_contracts_names_and_money_as_a_string(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Contract: conversion_value exported as a JSON string holding the digits sent."""
    order_id = _unique("order-jsonl")
    _conversion(shared_client, real_click(shared_server), order_id)
    out = cli(shared_server.database_url, "export", "conversions", "--format", "jsonl")
    [line] = [line for line in out.splitlines() if order_id in line]
    assert '"conversion_value":"49.99"' in line.replace(" ", "")
    assert set(CONVERSION_FIELDS) <= set(json.loads(line))


def test_clicks_export_lists_every_click(shared_server: ServerProcess) -> None:
    """export clicks writes one object per stored click."""
    ids = {real_click(shared_server), real_click(shared_server)}
    rows = _mine(export(shared_server.database_url, "clicks"), "click_id", ids)
    assert {row["click_id"] for row in rows} == ids
    assert all(row["landing_url"] == "https://shop.example.com/landing" for row in rows)


def test_jsonl_is_one_object_per_line(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Contract: jsonl (the default format) writes one object per line, also for values holding
    line breaks."""
    ids = [_unique(f"line-{n}") for n in range(3)]
    for event_id in ids:
        _collect(shared_client, event_id, params={"text": "multi\nline"})
    lines = cli(shared_server.database_url, "export", "events").splitlines()
    objects = [json.loads(line) for line in lines]
    assert all(isinstance(obj, dict) for obj in objects)
    assert [obj["event_id"] for obj in objects if obj["event_id"] in ids] == ids


def test_export_since_keeps_only_rows_received_at_or_after(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Contract: export --since ISO8601 filters on the time the row was received."""
    before, after = _unique("before"), _unique("after")
    _collect(shared_client, before)
    since = datetime.now(UTC)
    _collect(shared_client, after)
    rows = export(shared_server.database_url, "events", "--since", since.isoformat())
    assert [row["event_id"] for row in _mine(rows, "event_id", {before, after})] == [after]
    _, csv_rows = export_csv(shared_server.database_url, "events", "--since", since.isoformat())
    assert [row["event_id"] for row in _mine(csv_rows, "event_id", {before, after})] == [after]


def test_export_since_accepts_other_offsets_and_z(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """--since is any ISO-8601 instant: another offset or a Z names the same moment."""
    old, new = _unique("old"), _unique("new")
    _collect(shared_client, old)
    since = datetime.now(UTC)
    _collect(shared_client, new)
    tokyo = since.astimezone(timezone(timedelta(hours=9))).isoformat()
    zulu = since.isoformat().replace("+00:00", "Z")
    for text in (tokyo, zulu):
        rows = export(shared_server.database_url, "events", "--since", text)
        assert [row["event_id"] for row in _mine(rows, "event_id", {old, new})] == [new]
    future = (since + timedelta(days=1)).isoformat()
    assert export(shared_server.database_url, "events", "--since", future) == []


def test_export_takes_until_partner_and_limit(server: ServerProcess) -> None:
    """`export --until` keeps rows received before it, `--partner` (name or id) one partner's
    rows, `--limit` the first N in the order received; clicks belong to no partner."""
    acme = create_key(server.database_url, "acme", "a")
    bravo = create_key(server.database_url, "bravo", "b")

    def send(key: dict[str, Any], name: str) -> None:
        answer = httpx.post(
            f"{server.base_url}/v1/api/collect",
            json={"event_name": name},
            headers={"Authorization": f"Bearer {key['api_key']}"},
        )
        assert answer.status_code == 204

    send(acme, "first")
    send(bravo, "second")
    time.sleep(0.05)
    between = datetime.now(UTC)
    time.sleep(0.05)
    send(acme, "third")

    def names(*options: str) -> list[str]:
        return [row["event_name"] for row in export(server.database_url, "events", *options)]

    assert names() == ["first", "second", "third"]
    assert names("--until", between.isoformat()) == ["first", "second"]
    assert names("--since", between.isoformat()) == ["third"]
    assert names("--partner", "acme") == ["first", "third"]
    assert names("--partner", bravo["partner_id"]) == ["second"]
    assert names("--limit", "2") == ["first", "second"]
    assert names("--partner", "acme", "--limit", "1") == ["first"]
    with pytest.raises(RuntimeError, match="no partner"):
        names("--partner", "nobody")
    with pytest.raises(RuntimeError, match="clicks belong to no partner"):
        export(server.database_url, "clicks", "--partner", "acme")


def test_partner_selects_a_partner_that_has_no_key(shared_server: ServerProcess) -> None:
    """`--partner` finds every partner by name or id, also one without an API key (made by
    `partners create`, the admin API or the Tag registry): its export is empty, not an error
    saying it does not exist."""
    url = shared_server.database_url
    name = unique_name("keyless")
    cli(url, "partners", "create", name)
    partner_id = next(
        p["partner_id"]
        for p in map(json.loads, cli(url, "partners", "list", "--json").splitlines())
        if p["name"] == name
    )
    for ref in (name, partner_id):
        assert cli(url, "export", "events", "--partner", ref) == ""
        report = json.loads(cli(url, "report", "events", "--partner", ref, "--json"))
        assert report["rows"] == [{"events": 0}]
        assert json.loads(cli(url, "rejections", "--partner", ref, "--json"))["rejections"] == []
