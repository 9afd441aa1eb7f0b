"""POST /v1/api/collect and /api/collect through the real server process.

Each test keeps to rows of its own (unique ids) on one server shared by the module.
"""

from __future__ import annotations

import time
import uuid
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server import ServerProcess, create_key, export

COLLECT = "/v1/api/collect"


def _unique(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:12]}"


def _rows(server: ServerProcess, field: str, value: str) -> list[dict[str, Any]]:
    return [row for row in export(server.database_url, "events") if row[field] == value]


def _post(client: httpx.Client, body: dict[str, Any], **headers: str) -> None:
    response = client.post(COLLECT, json=body, headers=headers)
    assert response.status_code == 204, response.text
    assert response.content == b""


def test_seed_s2s_collect_example_is_stored_with_every_field(
    shared_server: ServerProcess, shared_client: httpx.Client, shared_key: dict[str, Any]
) -> None:
    """Seed 000 (S2S Collect API): the curl example answers 204 No Content and is stored."""
    event_id = _unique("pv-order-123-step-1")
    response = shared_client.post(
        "/v1/api/collect",
        headers={"Content-Type": "application/json"},
        json={
            "tag_id": "adv_001",
            "event_name": "page_view",
            "event_id": event_id,
            "timestamp": 1771879200,
            "page_url": "https://shop.example.com/checkout",
            "params": {"step": "shipping"},
        },
    )
    assert response.status_code == 204
    assert response.content == b""
    [row] = _rows(shared_server, "event_id", event_id)
    assert row["tag_id"] == "adv_001"
    assert row["event_name"] == "page_view"
    assert row["timestamp"] == 1771879200
    assert row["page_url"] == "https://shop.example.com/checkout"
    assert row["channel"] == "server"
    assert row["partner_id"] == shared_key["partner_id"]
    assert row["params"] == {
        "step": "shipping",
        "integration": "partner_s2s",
        "partner_id": shared_key["partner_id"],
        "api_key_label": "test",
    }
    assert row["received_at"]


def test_seed_events_api_example_on_the_api_collect_alias(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Seed 002 (Events API): POST /api/collect with the documented body answers 204."""
    event_id = _unique("evt_42")
    response = shared_client.post(
        "/api/collect",
        json={
            "tag_id": "<YOUR_TAG_ID>",
            "event_name": "items_added",
            "event_id": event_id,
            "timestamp": 1748275200,
            "click_id": "clk_xyz",
            "session_id": "sess_abc",
            "params": {"content_id": "sku_123", "quantity": 2, "value": 58.00, "currency": "USD"},
        },
    )
    assert response.status_code == 204
    [row] = _rows(shared_server, "event_id", event_id)
    assert row["event_name"] == "items_added"
    assert row["tag_id"] == "<YOUR_TAG_ID>"
    assert row["timestamp"] == 1748275200
    assert row["click_id"] == "clk_xyz"
    assert row["session_id"] == "sess_abc"
    assert row["params"]["content_id"] == "sku_123"
    assert row["params"]["quantity"] == 2
    assert row["params"]["value"] == 58
    assert row["params"]["currency"] == "USD"


def test_every_optional_collect_field_is_stored_as_sent(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Seed: collect's optional fields (session_id ... params) are stored under their own names."""
    event_id = _unique("all")
    body = {
        "event_name": "impression",
        "tag_id": "adv_001",
        "event_id": event_id,
        "timestamp": 1771879200,
        "page_url": "https://shop.example.com/p",
        "referrer": "https://news.example.org/",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) Firefox/128.0",
        "session_id": "sess_1",
        "client_id": "client_1",
        "attribution_type": "view",
        "impression_id": "imp_1",
        "click_id": "clk_1",
        "bid_id": "bid_1",
        "impression_state": "viewable",
        "view_time_ms": 1500,
        "consent": {"gdpr": True, "ccpa": "1YNN"},
    }
    _post(shared_client, body)
    [row] = _rows(shared_server, "event_id", event_id)
    for field, value in body.items():
        assert row[field] == value, field


@pytest.mark.parametrize("channel", ["web", "browser", "server", "", "tag"])
def test_collect_stores_channel_server_whatever_was_sent(
    shared_server: ServerProcess, shared_client: httpx.Client, channel: str
) -> None:
    """Seed: channel is ignored for S2S collect; stored as server."""
    event_id = _unique("chan")
    _post(shared_client, {"event_name": "page_view", "event_id": event_id, "channel": channel})
    [row] = _rows(shared_server, "event_id", event_id)
    assert row["channel"] == "server"


def test_collect_stamps_auth_params_over_the_clients_and_keeps_the_rest(
    shared_server: ServerProcess, shared_client: httpx.Client, shared_key: dict[str, Any]
) -> None:
    """Contract: integration/partner_id/api_key_label stamped over the client's; others kept."""
    event_id = _unique("stamp")
    _post(
        shared_client,
        {
            "event_name": "page_view",
            "event_id": event_id,
            "params": {
                "integration": "browser_tag",
                "partner_id": "ptn_forged",
                "api_key_label": "forged",
                "step": "shipping",
                "nested": {"a": [1, 2]},
            },
        },
    )
    [row] = _rows(shared_server, "event_id", event_id)
    assert row["params"] == {
        "integration": "partner_s2s",
        "partner_id": shared_key["partner_id"],
        "api_key_label": "test",
        "step": "shipping",
        "nested": {"a": [1, 2]},
    }


def test_collect_without_params_still_gets_the_stamp(
    shared_server: ServerProcess, shared_client: httpx.Client, shared_key: dict[str, Any]
) -> None:
    """Seed: Thrad stamps auth metadata into params, also when the client sent none."""
    event_id = _unique("noparams")
    _post(shared_client, {"event_name": "page_view", "event_id": event_id})
    [row] = _rows(shared_server, "event_id", event_id)
    assert row["params"]["integration"] == "partner_s2s"
    assert row["params"]["partner_id"] == shared_key["partner_id"]
    assert row["params"]["api_key_label"] == "test"


# -- tag_id derivation ------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("body", "headers", "expected"),
    [
        ({"page_url": "https://Shop.Example.com:8443/checkout"}, {}, "site:shop.example.com"),
        (
            {"page_url": "https://shop.example.com/"},
            {"Origin": "https://origin.example.org", "Referer": "https://ref.example.net/"},
            "site:shop.example.com",
        ),
        (
            {},
            {"Origin": "https://App.Example.org:3000", "Referer": "https://ref.example.net/"},
            "site:app.example.org",
        ),
        ({}, {"Referer": "https://Ref.Example.NET:444/a/b?c=d"}, "site:ref.example.net"),
        ({}, {}, "site:unknown"),
        ({"tag_id": "   ", "page_url": "https://shop.example.com/"}, {}, "site:shop.example.com"),
        ({"tag_id": "", "page_url": "https://shop.example.com/"}, {}, "site:shop.example.com"),
        ({"tag_id": None}, {"Origin": "https://origin.example.org"}, "site:origin.example.org"),
    ],
    ids=[
        "page_url",
        "page_url-beats-headers",
        "origin-beats-referer",
        "referer",
        "unknown",
        "spaces",
        "empty",
        "null",
    ],
)
def test_tag_id_is_derived_from_page_url_then_origin_then_referer(
    shared_server: ServerProcess,
    shared_client: httpx.Client,
    body: dict[str, Any],
    headers: dict[str, str],
    expected: str,
) -> None:
    """Contract: tag_id omitted/null/empty/spaces -> site:<host> from page_url, then Origin,
    then Referer, else site:unknown; host lower-cased, port dropped."""
    event_id = _unique("tag")
    _post(shared_client, {"event_name": "page_view", "event_id": event_id, **body}, **headers)
    [row] = _rows(shared_server, "event_id", event_id)
    assert row["tag_id"] == expected


# -- dedupe -----------------------------------------------------------------------------------


def test_collect_repeat_of_tag_id_and_event_id_is_204_and_stored_once(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Seed: dedupe applies when event_id is provided (by tag_id + event_id); contract: 204,
    empty body, also for a deduplicated repeat."""
    event_id = _unique("dup")
    body = {"tag_id": "adv_001", "event_name": "page_view", "event_id": event_id}
    _post(shared_client, body)
    _post(shared_client, {**body, "params": {"retry": 1}})
    rows = _rows(shared_server, "event_id", event_id)
    assert len(rows) == 1
    assert "retry" not in rows[0]["params"]


def test_collect_dedupe_uses_the_derived_tag_id(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Contract: same (tag_id, event_id) *after derivation* is stored once."""
    event_id = _unique("derived")
    _post(
        shared_client, {"event_name": "a", "event_id": event_id, "page_url": "https://x.example/"}
    )
    _post(shared_client, {"event_name": "a", "event_id": event_id}, Origin="https://X.example:1")
    _post(shared_client, {"event_name": "a", "event_id": event_id, "tag_id": "site:x.example"})
    assert len(_rows(shared_server, "event_id", event_id)) == 1


def test_same_event_id_under_another_tag_id_is_another_event(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Seed: the dedupe key is tag_id + event_id, not event_id alone."""
    event_id = _unique("two-tags")
    _post(shared_client, {"tag_id": "adv_001", "event_name": "page_view", "event_id": event_id})
    _post(shared_client, {"tag_id": "adv_002", "event_name": "page_view", "event_id": event_id})
    rows = _rows(shared_server, "event_id", event_id)
    assert sorted(row["tag_id"] for row in rows) == ["adv_001", "adv_002"]


def test_collect_without_event_id_is_never_deduplicated(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Contract: no event_id, no dedupe: identical events without one are each stored."""
    tag_id = _unique("no-event-id")
    body = {"tag_id": tag_id, "event_name": "page_view", "timestamp": 1771879200}
    for _ in range(3):
        _post(shared_client, body)
    assert len(_rows(shared_server, "tag_id", tag_id)) == 3


# -- timestamp and addresses ------------------------------------------------------------------


def test_float_timestamp_is_stored_truncated_to_seconds(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Contract: a float timestamp is truncated to seconds."""
    event_id = _unique("ts")
    _post(shared_client, {"event_name": "a", "event_id": event_id, "timestamp": 1771879200.999})
    [row] = _rows(shared_server, "event_id", event_id)
    assert row["timestamp"] == 1771879200


def test_omitted_timestamp_is_the_receive_time(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Events API: timestamp 'Defaults to server receive time'."""
    event_id = _unique("now")
    before = int(time.time())
    _post(shared_client, {"event_name": "a", "event_id": event_id})
    after = int(time.time())
    [row] = _rows(shared_server, "event_id", event_id)
    assert before <= row["timestamp"] <= after


def test_client_ip_is_the_ip_address_and_the_sender_is_kept(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Contract: ip_address is the body's valid client_ip; sender_ip is the TCP peer, kept."""
    event_id = _unique("ip")
    _post(shared_client, {"event_name": "a", "event_id": event_id, "client_ip": "203.0.113.7"})
    [row] = _rows(shared_server, "event_id", event_id)
    assert row["ip_address"] == "203.0.113.7"
    assert row["sender_ip"] == "127.0.0.1"


def test_without_client_ip_the_peer_is_the_ip_address(
    shared_server: ServerProcess, shared_client: httpx.Client
) -> None:
    """Contract: otherwise the TCP peer (X-Forwarded-For from an untrusted peer is ignored)."""
    event_id = _unique("peer")
    _post(
        shared_client, {"event_name": "a", "event_id": event_id}, **{"X-Forwarded-For": "1.2.3.4"}
    )
    [row] = _rows(shared_server, "event_id", event_id)
    assert row["ip_address"] == "127.0.0.1"
    assert row["sender_ip"] == "127.0.0.1"


def test_x_forwarded_for_of_a_trusted_proxy_is_believed(tmp_path: Path) -> None:
    """Contract: THRAD_TRUSTED_PROXIES lists CIDRs whose X-Forwarded-For is believed: the
    right-most untrusted hop is then the sender."""
    database_url = f"sqlite:///{tmp_path / 'thrad.db'}"
    server = ServerProcess(
        database_url, tmp_path / "server.log", env={"THRAD_TRUSTED_PROXIES": "127.0.0.0/8"}
    )
    try:
        key = create_key(database_url)
        response = httpx.post(
            f"{server.base_url}{COLLECT}",
            json={"event_name": "a", "event_id": "xff"},
            headers={
                "Authorization": f"Bearer {key['api_key']}",
                "X-Forwarded-For": "198.51.100.66, 203.0.113.9, 127.0.0.2",
            },
        )
        assert response.status_code == 204
    finally:
        server.stop()
    [row] = export(database_url, "events")
    assert row["sender_ip"] == "203.0.113.9"
    assert row["ip_address"] == "203.0.113.9"
