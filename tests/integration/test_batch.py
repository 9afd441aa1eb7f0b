"""Batch endpoints: one result per item in order, exactly as the single endpoints would store.

One server per module (and store): each test sends with a key of a partner of its own and reads
only that partner's rows.
"""

from __future__ import annotations

import gzip
import json
from typing import Any

import httpx

from tests.integration.server import ServerProcess, export, real_click


def _conversion(click_id: str, **fields: Any) -> dict[str, Any]:
    return {
        "click_id": click_id,
        "conversion_time": "2026-02-19T18:00:00Z",
        "conversion_value": 49.99,
        "currency": "USD",
        **fields,
    }


def test_collect_batch_bad_item_fails_alone_and_the_rest_are_stored(
    module_server: ServerProcess, partner_client: httpx.Client, partner: str
) -> None:
    events = [
        {"event_name": "page_view", "event_id": "a", "tag_id": "t"},
        {"event_id": "no-name"},
        {"event_name": 5},
        {"event_name": "purchase", "event_id": "b", "tag_id": "t", "timestamp": 1771879200},
    ]
    answer = partner_client.post("/v1/api/collect/batch", json={"events": events})
    assert answer.status_code == 200
    body = answer.json()
    assert [r["status"] for r in body["results"]] == ["ok", "error", "error", "ok"]
    assert [r["index"] for r in body["results"]] == [0, 1, 2, 3]
    assert body["results"][1]["error"]["code"] == "missing_field"
    assert body["results"][2]["error"]["code"] == "validation_error"
    assert body["results"][2]["error"]["details"][0]["field"] == "event_name"
    assert body["totals"] == {"ok": 2, "duplicate": 0, "error": 2}
    stored = export(module_server.database_url, "events", "--partner", partner)
    assert sorted(row["event_id"] for row in stored) == ["a", "b"]
    assert all(row["channel"] == "server" for row in stored)
    assert all(row["params"]["integration"] == "partner_s2s" for row in stored)


def test_collect_batch_dedupes_inside_one_batch_and_across_batches(
    module_server: ServerProcess, partner_client: httpx.Client, partner: str
) -> None:
    event = {"event_name": "page_view", "event_id": "same", "tag_id": "t"}
    first = partner_client.post("/v1/api/collect/batch", json={"events": [event, event]}).json()
    assert [r["status"] for r in first["results"]] == ["ok", "duplicate"]
    second = partner_client.post("/v1/api/collect/batch", json={"events": [event]}).json()
    assert second["results"][0]["status"] == "duplicate"
    single = partner_client.post("/v1/api/collect", json=event)
    assert single.status_code == 204
    assert len(export(module_server.database_url, "events", "--partner", partner)) == 1


def test_conversion_batch_per_item_results(
    module_server: ServerProcess, partner_client: httpx.Client, partner: str
) -> None:
    click_id = real_click(module_server)
    conversions = [
        _conversion(click_id, order_id="o-1"),
        _conversion(click_id, order_id="o-1"),
        _conversion("unknown-click", order_id="o-2"),
        _conversion(click_id, currency="XYZ"),
        _conversion(click_id, order_id="o-3", conversion_value=10, customer_tier="gold"),
    ]
    answer = partner_client.post("/v1/api/conversion/batch", json={"conversions": conversions})
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [r["status"] for r in results] == ["ok", "duplicate", "error", "error", "ok"]
    assert results[2]["error"]["code"] == "click_not_found"
    assert results[3]["error"]["code"] == "validation_error"
    assert answer.json()["totals"] == {"ok": 2, "duplicate": 1, "error": 2}
    stored = {
        row["order_id"]: row
        for row in export(module_server.database_url, "conversions", "--partner", partner)
    }
    assert set(stored) == {"o-1", "o-3"}
    assert stored["o-3"]["conversion_value"] == "10"
    assert stored["o-3"]["params"]["extra"] == {"customer_tier": "gold"}


def test_batch_over_500_items_is_413(partner_client: httpx.Client) -> None:
    events = [{"event_name": "e"}] * 501
    answer = partner_client.post("/v1/api/collect/batch", json={"events": events})
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"
    assert answer.json()["error"]["details"][0]["field"] == "events"


def test_batch_body_over_1_mib_is_413(partner_client: httpx.Client) -> None:
    events = [{"event_name": "e", "params": {"pad": "x" * 3000}}] * 400
    answer = partner_client.post("/v1/api/collect/batch", json={"events": events})
    assert answer.status_code == 413


def test_batch_envelope_must_hold_the_list(partner_client: httpx.Client) -> None:
    assert partner_client.post("/v1/api/collect/batch", json=[1]).status_code == 400
    missing = partner_client.post("/v1/api/collect/batch", json={"items": []})
    assert missing.status_code == 400
    assert missing.json()["error"]["code"] == "missing_field"
    assert missing.json()["error"]["details"][0]["field"] == "events"
    assert partner_client.post("/v1/api/collect/batch", json={"events": "x"}).status_code == 422


def test_gzip_batch_is_accepted(
    module_server: ServerProcess, partner_client: httpx.Client, partner: str
) -> None:
    events = [{"event_name": "page_view", "event_id": f"g{i}", "tag_id": "t"} for i in range(300)]
    body = gzip.compress(json.dumps({"events": events}).encode())
    answer = partner_client.post(
        "/v1/api/collect/batch",
        content=body,
        headers={"Content-Encoding": "gzip", "Content-Type": "application/json"},
    )
    assert answer.status_code == 200
    assert answer.json()["totals"]["ok"] == 300
    assert len(export(module_server.database_url, "events", "--partner", partner)) == 300


def test_gzip_bomb_is_refused_by_its_decompressed_size(partner_client: httpx.Client) -> None:
    bomb = gzip.compress(b'{"event_name": "x", "params": {"p": "' + b"a" * 20_000_000 + b'"}}')
    assert len(bomb) < 1024 * 1024
    answer = partner_client.post(
        "/v1/api/collect", content=bomb, headers={"Content-Encoding": "gzip"}
    )
    assert answer.status_code == 413
    assert answer.json()["error"]["code"] == "payload_too_large"


def test_broken_gzip_is_400_and_unknown_encoding_415(partner_client: httpx.Client) -> None:
    broken = partner_client.post(
        "/v1/api/collect", content=b"not gzip at all", headers={"Content-Encoding": "gzip"}
    )
    assert broken.status_code == 400
    assert broken.json()["error"]["code"] == "invalid_json"
    other = partner_client.post(
        "/v1/api/collect", content=b"{}", headers={"Content-Encoding": "br"}
    )
    assert other.status_code == 415


def test_batch_endpoints_are_in_the_openapi_document(module_server: ServerProcess) -> None:
    paths = httpx.get(f"{module_server.base_url}/openapi.json").json()["paths"]
    assert "/v1/api/collect/batch" in paths
    assert "/v1/api/conversion/batch" in paths
