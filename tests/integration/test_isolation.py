"""A key can never read or affect another partner's data."""

from __future__ import annotations

import httpx

from tests.integration.server import ServerProcess, create_key, export


def test_another_partner_cannot_suppress_events_by_sending_the_same_ids_first(
    server: ServerProcess, database_url: str
) -> None:
    event = {"event_name": "page_view", "tag_id": "adv_001", "event_id": "pv-1"}
    for partner in ("mallory", "acme", "acme"):
        key = create_key(database_url, partner, "k")["api_key"]
        answer = httpx.post(
            f"{server.base_url}/v1/api/collect",
            json=event,
            headers={"Authorization": f"Bearer {key}"},
        )
        assert answer.status_code == 204
    rows = export(database_url, "events")
    # Stored once per partner: acme's repeat was deduplicated, mallory's copy did not block it.
    assert sorted(row["params"]["api_key_label"] for row in rows) == ["k", "k"]
    assert len({row["partner_id"] for row in rows}) == 2
