"""?validate_only=true on collect, conversion and both batches: errors and warnings, nothing
stored, no dedupe state touched; auth and the rate limit still apply. On SQLite and PostgreSQL.
"""

from __future__ import annotations

import uuid
from typing import Any

import httpx

from tests.integration.server import ServerProcess, create_key, export, real_click

VALIDATE = {"validate_only": "true"}
CONVERSION = {
    "conversion_time": "2026-02-19T18:00:00Z",
    "conversion_value": 49.99,
    "currency": "USD",
}


def _events(database_url: str, event_id: str) -> list[dict[str, Any]]:
    return [
        row
        for row in export(database_url, "events", "--include-test")
        if row["event_id"] == event_id
    ]


def test_a_valid_collect_is_answered_with_its_warnings_and_not_stored(
    module_server: ServerProcess, partner_client: httpx.Client, partner: str
) -> None:
    event_id = f"v-{uuid.uuid4()}"
    body = {
        "event_name": "page_view",
        "event_id": event_id,
        "timestamp": 1771879200.75,
        "channel": "web",
        "colour": "blue",
        "params": {"partner_id": "someone-else", "step": 1},
    }
    answer = partner_client.post("/v1/api/collect", params=VALIDATE, json=body)
    assert answer.status_code == 200
    result = answer.json()
    assert result["valid"] is True
    assert result["errors"] == []
    warned = {warning["field"]: warning["message"] for warning in result["warnings"]}
    assert set(warned) == {"colour", "tag_id", "timestamp", "channel", "params.partner_id"}
    assert "site:unknown" in warned["tag_id"]
    assert "1771879200" in warned["timestamp"]
    assert "'web'" in warned["channel"]
    assert _events(module_server.database_url, event_id) == []
    # No dedupe state was taken: the real send is stored, once.
    assert partner_client.post("/v1/api/collect", json=body).status_code == 204
    assert len(_events(module_server.database_url, event_id)) == 1
    # A tidy body has no warnings; validate_only=false is the normal path.
    tidy = {"event_name": "x", "tag_id": "t", "timestamp": 1771879200}
    clean = partner_client.post("/v1/api/collect", params=VALIDATE, json=tidy).json()
    assert clean == {"valid": True, "errors": [], "warnings": []}
    normal = partner_client.post("/v1/api/collect", params={"validate_only": "false"}, json=tidy)
    assert normal.status_code == 204


def test_an_invalid_body_lists_every_error_as_a_normal_refusal_would(
    partner_client: httpx.Client,
) -> None:
    body = {"tag_id": 7, "timestamp": 1771879200000, "params": []}
    refused = partner_client.post("/v1/api/collect", json=body).json()["error"]["details"]
    checked = partner_client.post("/v1/api/collect", params=VALIDATE, json=body)
    assert checked.status_code == 200
    result = checked.json()
    assert result["valid"] is False
    assert result["errors"] == refused
    assert [e["field"] for e in result["errors"]] == ["event_name", "tag_id", "timestamp", "params"]
    not_json = partner_client.post("/v1/api/collect", params=VALIDATE, content=b"{nope").json()
    assert not_json["valid"] is False
    assert not_json["errors"][0]["field"] is None


def test_a_conversion_is_checked_against_its_click_without_taking_its_dedupe_key(
    module_server: ServerProcess, partner_client: httpx.Client, partner: str
) -> None:
    click_id = real_click(module_server)
    body = {**CONVERSION, "click_id": click_id, "order_id": "o-1", "customer_tier": "gold"}
    headers = {"Idempotency-Key": f"k-{uuid.uuid4()}"}
    checked = partner_client.post("/v1/api/conversion", params=VALIDATE, json=body, headers=headers)
    assert checked.status_code == 200
    result = checked.json()
    assert result["valid"] is True
    assert [w["field"] for w in result["warnings"]] == ["customer_tier"]
    # Nothing stored, no key taken: the real send is "ok", not "duplicate".
    assert export(module_server.database_url, "conversions", "--partner", partner) == []
    real = partner_client.post("/v1/api/conversion", json=body, headers=headers)
    assert real.json() == {"status": "ok"}
    unknown = {**CONVERSION, "click_id": str(uuid.uuid4())}
    result = partner_client.post("/v1/api/conversion", params=VALIDATE, json=unknown).json()
    assert result["valid"] is False
    assert [e["field"] for e in result["errors"]] == ["click_id"]
    missing = partner_client.post(
        "/v1/api/conversion", params=VALIDATE, json={"currency": "usd"}
    ).json()
    assert {e["field"] for e in missing["errors"]} == {
        "click_id",
        "conversion_time",
        "conversion_value",
    }


def test_a_live_key_is_told_a_test_click_is_no_click_of_its_own(
    module_server: ServerProcess, partner_client: httpx.Client, partner: str
) -> None:
    test_key = create_key(module_server.database_url, partner, "sandbox", "--test")
    with httpx.Client(
        base_url=module_server.base_url, headers={"Authorization": f"Bearer {test_key['api_key']}"}
    ) as sandbox:
        click_id = sandbox.post("/v1/api/test/clicks").json()["click_id"]
        body = {**CONVERSION, "click_id": click_id}
        mine = sandbox.post("/v1/api/conversion", params=VALIDATE, json=body).json()
        assert mine["valid"] is True
    theirs = partner_client.post("/v1/api/conversion", params=VALIDATE, json=body).json()
    assert theirs["valid"] is False
    assert "test click" in theirs["errors"][0]["message"]


def test_batches_answer_one_result_per_item_and_store_nothing(
    module_server: ServerProcess, partner_client: httpx.Client, partner: str
) -> None:
    event_id = f"b-{uuid.uuid4()}"
    events = {"events": [{"event_name": "a", "event_id": event_id, "tag_id": "t"}, {"tag_id": 1}]}
    answer = partner_client.post("/v1/api/collect/batch", params=VALIDATE, json=events)
    assert answer.status_code == 200
    results = answer.json()["results"]
    assert [(r["index"], r["valid"]) for r in results] == [(0, True), (1, False)]
    assert {e["field"] for e in results[1]["errors"]} == {"event_name", "tag_id"}
    assert _events(module_server.database_url, event_id) == []
    click_id = real_click(module_server)
    conversions = {
        "conversions": [
            {**CONVERSION, "click_id": click_id, "event_id": "e1"},
            {**CONVERSION, "click_id": str(uuid.uuid4())},
        ]
    }
    checked = partner_client.post(
        "/v1/api/conversion/batch", params=VALIDATE, json=conversions
    ).json()
    assert [(r["index"], r["valid"]) for r in checked["results"]] == [(0, True), (1, False)]
    assert export(module_server.database_url, "conversions", "--partner", partner) == []
    # The envelope is refused as on the normal path.
    envelope = partner_client.post("/v1/api/collect/batch", params=VALIDATE, json={})
    assert envelope.status_code == 400
    assert envelope.json()["error"]["code"] == "missing_field"


def test_validate_only_takes_only_true_or_false_and_still_needs_a_key(
    module_server: ServerProcess, partner_client: httpx.Client
) -> None:
    for value in ("yes", "1", "", "TRUE"):
        wrong = partner_client.post(
            "/v1/api/collect", params={"validate_only": value}, json={"event_name": "x"}
        )
        assert wrong.status_code == 422, value
        assert wrong.json()["error"]["details"][0]["field"] == "validate_only"
    twice = partner_client.post(
        "/v1/api/collect?validate_only=true&validate_only=false", json={"event_name": "x"}
    )
    assert twice.status_code == 422
    anonymous = httpx.post(
        f"{module_server.base_url}/v1/api/collect", params=VALIDATE, json={"event_name": "x"}
    )
    assert anonymous.status_code == 401
    too_big = partner_client.post(
        "/v1/api/collect", params=VALIDATE, content=b'{"event_name": "' + b"x" * 2_000_000 + b'"}'
    )
    assert too_big.status_code == 413


def test_validate_only_counts_against_the_rate_limit(
    module_server: ServerProcess, partner: str
) -> None:
    key = create_key(module_server.database_url, partner, "slow", "--rate-limit", "1")
    with httpx.Client(
        base_url=module_server.base_url, headers={"Authorization": f"Bearer {key['api_key']}"}
    ) as http:
        statuses = [
            http.post("/v1/api/collect", params=VALIDATE, json={"event_name": "x"}).status_code
            for _ in range(5)
        ]
    assert 429 in statuses
