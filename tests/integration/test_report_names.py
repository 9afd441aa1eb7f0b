"""Reports split web and server rows by channel, and standard from custom event names.

Contract: "Standard names: contents_viewed, items_added, ... Any other name is accepted as
custom: never reject on name"; reports group by channel and filter names=standard|custom.
"""

from __future__ import annotations

import uuid

import httpx

from tests.integration.server import ServerProcess


def test_reports_filter_standard_or_custom_names_and_group_by_channel(
    shared_client: httpx.Client, shared_server: ServerProcess
) -> None:
    tag = "names-" + uuid.uuid4().hex[:8]
    for name in ("items_added", "page_view", "my_custom_thing", "<b>odd</b>"):
        sent = shared_client.post("/v1/api/collect", json={"event_name": name, "tag_id": tag})
        assert sent.status_code == 204
    counts = {}
    for names in ("standard", "custom"):
        answer = shared_client.get(
            "/v1/api/reports/events",
            params={"group_by": "channel,event_name", "filter": f"tag_id:{tag}", "names": names},
        )
        assert answer.status_code == 200, answer.text
        counts[names] = {
            (r["channel"], r["event_name"]): r["events"] for r in answer.json()["rows"]
        }
    assert counts["standard"] == {("server", "items_added"): 1, ("server", "page_view"): 1}
    assert counts["custom"] == {("server", "<b>odd</b>"): 1, ("server", "my_custom_thing"): 1}
    bad = shared_client.get("/v1/api/reports/events", params={"names": "both"})
    assert (bad.status_code, bad.json()["error"]["details"][0]["field"]) == (422, "names")
    funnel = shared_client.get("/v1/api/reports/funnel", params={"names": "standard"})
    assert funnel.status_code == 422
