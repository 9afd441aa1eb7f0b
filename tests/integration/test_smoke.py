"""The seed's collect example through the real server process."""

from __future__ import annotations

import httpx

from tests.integration.server import ServerProcess, export


def test_seed_collect_example_is_stored_and_answered_204(
    server: ServerProcess, client: httpx.Client
) -> None:
    response = client.post(
        "/v1/api/collect",
        json={
            "tag_id": "adv_001",
            "event_name": "page_view",
            "event_id": "pv-order-123-step-1",
            "timestamp": 1771879200,
            "page_url": "https://shop.example.com/checkout",
            "params": {"step": "shipping"},
        },
    )
    assert response.status_code == 204
    assert response.content == b""
    [row] = export(server.database_url, "events")
    assert row["event_name"] == "page_view"
    assert row["channel"] == "server"
    assert row["params"]["step"] == "shipping"
    assert row["params"]["integration"] == "partner_s2s"
