"""POST /v1/tag/collect and /v1/tag/conversion: the browser Tag's public endpoints, attacked.

Contract: "no API key; the Origin must be one of the tag's origins, else 403
origin_not_allowed; CORS preflight (OPTIONS) answered 204 for those origins only; text/plain
bodies accepted (sendBeacon). Stored with channel: web and params.integration: tag ... A browser
conversion ... thrad_exp and thrad_sig, which must verify against the click id and not be past
thrad_exp (else 403 bad_click_signature)."
"""

from __future__ import annotations

import gzip
import json
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest

from tests.integration.server import (
    ServerProcess,
    cli,
    click_link,
    create_key,
    follow_click,
    real_click,
    running_server,
)
from tests.integration.tagging import (
    CLICK_SECRET,
    SERVER_ENV,
    new_tag_id,
    register_tag,
    rows_where,
)
from thrad_events.ingest.clicklinks import click_signature

SHOP = "https://shop.example.com"
OTHER_SHOP = "https://other-shop.example.net"
BOT_UA = "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)"
BROWSER_UA = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/126.0.0.0 Safari/537.36"
)


@pytest.fixture(scope="module")
def tag_server(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("tag")
    with running_server(shared_database_url, tmp / "server.log", env=SERVER_ENV) as process:
        yield process


@pytest.fixture(scope="module")
def tags(tag_server: ServerProcess) -> dict[str, str]:
    """Two partners' tags: acme's on the shop, globex's on another shop (and acme's partner id)."""
    acme, globex = new_tag_id(), new_tag_id()
    found = register_tag(tag_server.database_url, "acme", acme, SHOP, "http://localhost:8000")
    register_tag(tag_server.database_url, "globex", globex, OTHER_SHOP)
    return {"acme": acme, "globex": globex, "acme_partner_id": found["partner_id"]}


@pytest.fixture
def http(tag_server: ServerProcess) -> Iterator[httpx.Client]:
    with (
        tag_server.logs_no_new_errors(),
        httpx.Client(base_url=tag_server.base_url, timeout=10) as client,
    ):
        yield client


def beacon(
    http: httpx.Client, path: str, body: dict[str, Any], origin: str | None = SHOP, **headers: str
) -> httpx.Response:
    """What sendBeacon sends: a text/plain body, the page's Origin, the browser's UA."""
    sent = {"content-type": "text/plain;charset=UTF-8", "user-agent": BROWSER_UA, **headers}
    if origin is not None:
        sent["origin"] = origin
    return http.post(path, content=httpx.Request("POST", "/", json=body).content, headers=sent)


def events_with(database_url: str, event_id: str) -> list[dict[str, Any]]:
    return rows_where(database_url, "events", lambda row: row["event_id"] == event_id)


def test_an_event_from_an_allowed_origin_is_stored_as_web_for_the_registered_partner(
    http: httpx.Client, tag_server: ServerProcess, tags: dict[str, str]
) -> None:
    event_id = str(uuid.uuid4())
    answer = beacon(
        http,
        "/v1/tag/collect",
        {
            "tag_id": tags["acme"],
            "event_name": "page_view",
            "event_id": event_id,
            "page_url": f"{SHOP}/p/1?utm_source=thrad",
            # A page cannot speak for another address, user agent, partner or integration.
            "client_ip": "8.8.8.8",
            "user_agent": "forged",
            "channel": "server",
            "params": {"partner_id": "ptn_someone_else", "integration": "partner_s2s", "k": 1},
        },
        origin="https://SHOP.example.com:443",
    )
    assert answer.status_code == 204, answer.text
    assert answer.headers["access-control-allow-origin"] == SHOP
    [row] = events_with(tag_server.database_url, event_id)
    assert row["channel"] == "web"
    assert row["tag_id"] == tags["acme"]
    partner_id = tags["acme_partner_id"]
    assert row["partner_id"] == partner_id
    assert row["params"] == {"integration": "tag", "partner_id": partner_id, "k": 1}
    assert row["user_agent"] == BROWSER_UA
    assert row["ua_browser"] == "Chrome"
    assert row["ua_is_bot"] == 0
    assert row["ip_address"] == "127.0.0.1"
    assert row["utm_source"] == "thrad"


def test_the_bot_flag_comes_from_the_browsers_user_agent(
    http: httpx.Client, tag_server: ServerProcess, tags: dict[str, str]
) -> None:
    event_id = str(uuid.uuid4())
    body = {"tag_id": tags["acme"], "event_name": "page_view", "event_id": event_id}
    assert beacon(http, "/v1/tag/collect", body, **{"user-agent": BOT_UA}).status_code == 204
    [row] = events_with(tag_server.database_url, event_id)
    assert (row["ua_is_bot"], row["ua_device_type"]) == (1, "bot")


def test_a_repeated_event_id_is_stored_once(
    http: httpx.Client, tag_server: ServerProcess, tags: dict[str, str]
) -> None:
    event_id = str(uuid.uuid4())
    body = {"tag_id": tags["acme"], "event_name": "items_added", "event_id": event_id}
    assert [beacon(http, "/v1/tag/collect", body).status_code for _ in range(3)] == [204] * 3
    assert len(events_with(tag_server.database_url, event_id)) == 1


@pytest.mark.parametrize(
    ("origin", "why"),
    [
        (None, "no Origin header"),
        ("null", "an opaque origin (sandboxed frame, file page)"),
        ("https://evil.example.com", "a foreign site"),
        ("https://shop.example.com.evil.com", "a look-alike host"),
        ("http://shop.example.com", "the same host over another scheme"),
        ("https://shop.example.com:8443", "the same host on another port"),
        ("https://shop.example.com/path", "not an origin"),
    ],
)
def test_a_request_from_another_origin_is_refused_and_stores_nothing(
    http: httpx.Client, tag_server: ServerProcess, tags: dict[str, str], origin: str, why: str
) -> None:
    event_id = str(uuid.uuid4())
    body = {"tag_id": tags["acme"], "event_name": "page_view", "event_id": event_id}
    answer = beacon(http, "/v1/tag/collect", body, origin=origin)
    assert answer.status_code == 403, why
    assert answer.json()["error"]["code"] == "origin_not_allowed"
    assert "access-control-allow-origin" not in answer.headers
    assert events_with(tag_server.database_url, event_id) == []


def test_a_page_cannot_send_under_another_partners_tag(
    http: httpx.Client, tag_server: ServerProcess, tags: dict[str, str]
) -> None:
    """acme's shop naming globex's tag is refused: the tag's origins decide, not the body."""
    event_id = str(uuid.uuid4())
    body = {"tag_id": tags["globex"], "event_name": "page_view", "event_id": event_id}
    answer = beacon(http, "/v1/tag/collect", body, origin=SHOP)
    assert answer.json()["error"]["code"] == "origin_not_allowed"
    unknown = {**body, "tag_id": "never-registered"}
    assert beacon(http, "/v1/tag/collect", unknown).json()["error"]["code"] == (
        "origin_not_allowed"
    )
    assert events_with(tag_server.database_url, event_id) == []


def test_the_body_must_name_a_tag(http: httpx.Client, tags: dict[str, str]) -> None:
    missing = beacon(http, "/v1/tag/collect", {"event_name": "page_view"})
    assert (missing.status_code, missing.json()["error"]["code"]) == (400, "missing_field")
    assert missing.json()["error"]["details"][0]["field"] == "tag_id"
    wrong = beacon(http, "/v1/tag/collect", {"tag_id": 7, "event_name": "x"})
    assert (wrong.status_code, wrong.json()["error"]["code"]) == (422, "validation_error")
    garbage = http.post("/v1/tag/collect", content=b"<script>", headers={"origin": SHOP})
    assert (garbage.status_code, garbage.json()["error"]["code"]) == (400, "invalid_json")


def test_the_collect_body_is_validated_as_on_the_server_endpoint(
    http: httpx.Client, tags: dict[str, str]
) -> None:
    body = {"tag_id": tags["acme"], "event_name": "x", "timestamp": 1771879200000}
    answer = beacon(http, "/v1/tag/collect", body)
    assert answer.status_code == 422
    assert answer.json()["error"]["details"][0]["field"] == "timestamp"


def test_an_event_name_with_html_is_accepted_and_stored_as_text(
    http: httpx.Client, tag_server: ServerProcess, tags: dict[str, str]
) -> None:
    event_id = str(uuid.uuid4())
    name = '<img src=x onerror="alert(1)">'
    body = {"tag_id": tags["acme"], "event_name": name, "event_id": event_id}
    assert beacon(http, "/v1/tag/collect", body).status_code == 204
    assert events_with(tag_server.database_url, event_id)[0]["event_name"] == name


def test_an_oversized_text_plain_body_is_refused(http: httpx.Client, tags: dict[str, str]) -> None:
    body = {"tag_id": tags["acme"], "event_name": "x", "params": {"blob": "a" * 70_000}}
    answer = beacon(http, "/v1/tag/collect", body)
    assert (answer.status_code, answer.json()["error"]["code"]) == (413, "payload_too_large")


def test_the_tags_body_limit_holds_without_a_length_and_after_gzip(
    http: httpx.Client, tag_server: ServerProcess, tags: dict[str, str]
) -> None:
    """64 KiB, not the server endpoints' 1 MiB: also for a chunked body (no Content-Length)
    and for a small gzip body that inflates past it."""
    event_id = str(uuid.uuid4())
    body = {"tag_id": tags["acme"], "event_name": "x", "event_id": event_id}
    raw = json.dumps({**body, "params": {"blob": "a" * 100_000}}).encode()
    headers = {"origin": SHOP, "content-type": "text/plain"}

    def chunked() -> Iterator[bytes]:
        yield raw[:40_000]
        yield raw[40_000:]

    answer = http.post("/v1/tag/collect", content=chunked(), headers=headers)
    assert (answer.status_code, answer.json()["error"]["code"]) == (413, "payload_too_large")
    packed = gzip.compress(raw)
    assert len(packed) < 65_536
    answer = http.post(
        "/v1/tag/collect", content=packed, headers={**headers, "content-encoding": "gzip"}
    )
    assert (answer.status_code, answer.json()["error"]["code"]) == (413, "payload_too_large")
    assert events_with(tag_server.database_url, event_id) == []
    small = gzip.compress(json.dumps(body).encode())
    answer = http.post(
        "/v1/tag/collect", content=small, headers={**headers, "content-encoding": "gzip"}
    )
    assert answer.status_code == 204
    assert len(events_with(tag_server.database_url, event_id)) == 1


def test_a_preflight_is_answered_for_registered_origins_only(
    http: httpx.Client, tags: dict[str, str]
) -> None:
    asked = {
        "access-control-request-method": "POST",
        "access-control-request-headers": "content-type",
    }
    for path in ("/v1/tag/collect", "/v1/tag/conversion"):
        allowed = http.options(path, headers={"origin": SHOP, **asked})
        assert allowed.status_code == 204
        assert allowed.headers["access-control-allow-origin"] == SHOP
        assert "POST" in allowed.headers["access-control-allow-methods"]
        foreign = http.options(path, headers={"origin": "https://evil.example.com", **asked})
        assert foreign.status_code == 403
        assert "access-control-allow-origin" not in foreign.headers


def test_a_daily_cap_set_by_the_operator_refuses_the_rest_of_the_day(
    http: httpx.Client, tag_server: ServerProcess
) -> None:
    tag_id = new_tag_id()
    register_tag(tag_server.database_url, "acme", tag_id, SHOP, extra=("--daily-cap", "2"))
    answers = [
        beacon(http, "/v1/tag/collect", {"tag_id": tag_id, "event_name": "x"}).status_code
        for _ in range(3)
    ]
    assert answers == [204, 204, 429]
    refused = beacon(http, "/v1/tag/collect", {"tag_id": tag_id, "event_name": "x"})
    now = datetime.now(UTC)
    seconds_left = 86400 - (now.hour * 3600 + now.minute * 60 + now.second)
    assert 1 <= int(refused.headers["retry-after"]) <= seconds_left + 1


# -- conversions -----------------------------------------------------------------------------


def click_of(server: ServerProcess) -> dict[str, Any]:
    """A click stored through the real redirect, with the proof it appended to the landing URL."""
    link = click_link(server.database_url, server.base_url, f"{SHOP}/landing", env=SERVER_ENV)
    answer = follow_click(link)
    assert answer.status_code == 302
    params = httpx.URL(answer.headers["location"]).params
    return {
        "click_id": params["thrad_click_id"],
        "thrad_exp": int(params["thrad_exp"]),
        "thrad_sig": params["thrad_sig"],
    }


def conversion_body(tag_id: str, proof: dict[str, Any], **extra: Any) -> dict[str, Any]:
    return {
        "tag_id": tag_id,
        "conversion_time": "2026-02-19T18:00:00Z",
        "conversion_value": 49.99,
        "currency": "usd",
        "order_id": str(uuid.uuid4()),
        **proof,
        **extra,
    }


def conversions_of(database_url: str, order_id: str) -> list[dict[str, Any]]:
    return rows_where(database_url, "conversions", lambda row: row["order_id"] == order_id)


def test_a_signed_browser_conversion_is_stored_as_web_and_deduplicated(
    http: httpx.Client, tag_server: ServerProcess, tags: dict[str, str]
) -> None:
    body = conversion_body(tags["acme"], click_of(tag_server), channel="server")
    first = beacon(http, "/v1/tag/conversion", body)
    assert (first.status_code, first.json()) == (200, {"status": "ok"})
    assert first.headers["access-control-allow-origin"] == SHOP
    again = beacon(http, "/v1/tag/conversion", body)
    assert again.json() == {"status": "duplicate"}
    [row] = conversions_of(tag_server.database_url, body["order_id"])
    assert (row["channel"], row["tag_id"], row["currency"]) == ("web", tags["acme"], "USD")
    assert row["params"]["integration"] == "tag"
    assert "thrad_sig" not in row["params"].get("extra", {})
    assert row["user_agent"] == BROWSER_UA


@pytest.mark.parametrize("tamper", ["sig", "exp", "click", "missing"])
def test_a_conversion_whose_proof_fails_is_refused(
    http: httpx.Client, tag_server: ServerProcess, tags: dict[str, str], tamper: str
) -> None:
    proof = click_of(tag_server)
    if tamper == "sig":
        proof["thrad_sig"] = ("0" if proof["thrad_sig"][0] != "0" else "1") + proof["thrad_sig"][1:]
    elif tamper == "exp":
        proof["thrad_exp"] += 3600  # a longer life than the one signed
    elif tamper == "click":
        proof["click_id"] = real_click(tag_server, env=SERVER_ENV)  # another, real click
    else:
        del proof["thrad_sig"]
    body = conversion_body(tags["acme"], proof)
    answer = beacon(http, "/v1/tag/conversion", body)
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "bad_click_signature")
    assert conversions_of(tag_server.database_url, body["order_id"]) == []


def test_an_expired_click_cannot_convert_from_the_browser(
    http: httpx.Client, tag_server: ServerProcess, tags: dict[str, str]
) -> None:
    proof = click_of(tag_server)
    past = int(time.time()) - 60
    proof.update(thrad_exp=past, thrad_sig=click_signature(CLICK_SECRET, proof["click_id"], past))
    answer = beacon(http, "/v1/tag/conversion", conversion_body(tags["acme"], proof))
    assert (answer.status_code, answer.json()["error"]["code"]) == (403, "bad_click_signature")
    assert "expired" in answer.json()["error"]["message"]


def test_a_signed_but_unknown_click_is_not_found(
    http: httpx.Client, tag_server: ServerProcess, tags: dict[str, str]
) -> None:
    click_id, exp = str(uuid.uuid4()), int(time.time()) + 3600
    proof = {"click_id": click_id, "thrad_exp": exp}
    proof["thrad_sig"] = click_signature(CLICK_SECRET, click_id, exp)
    answer = beacon(http, "/v1/tag/conversion", conversion_body(tags["acme"], proof))
    assert (answer.status_code, answer.json()["error"]["code"]) == (404, "click_not_found")


def test_a_conversion_from_a_foreign_origin_is_refused(
    http: httpx.Client, tag_server: ServerProcess, tags: dict[str, str]
) -> None:
    body = conversion_body(tags["acme"], click_of(tag_server))
    answer = beacon(http, "/v1/tag/conversion", body, origin=OTHER_SHOP)
    assert answer.json()["error"]["code"] == "origin_not_allowed"
    assert conversions_of(tag_server.database_url, body["order_id"]) == []


def test_reports_set_web_rows_beside_server_rows_and_split_standard_from_custom_names(
    http: httpx.Client, tag_server: ServerProcess
) -> None:
    """The same tag's rows from the browser (web) and from the partner's server (server), in
    the partner's events and conversions reports, by channel, for names=standard and custom."""
    url, tag_id = tag_server.database_url, new_tag_id()
    register_tag(url, "acme", tag_id, SHOP)
    for name in ("items_added", "my_web_thing"):
        event = {"tag_id": tag_id, "event_name": name}
        assert beacon(http, "/v1/tag/collect", event).status_code == 204
    # Within the reports' default window (the last 7 days, by conversion_time).
    now = datetime.now(UTC).isoformat()
    web_conversion = conversion_body(tag_id, click_of(tag_server), conversion_time=now)
    assert beacon(http, "/v1/tag/conversion", web_conversion).status_code == 200
    key = create_key(url, "acme")
    with httpx.Client(
        base_url=tag_server.base_url, headers={"Authorization": f"Bearer {key['api_key']}"}
    ) as partner:
        sent = partner.post("/v1/api/collect", json={"tag_id": tag_id, "event_name": "items_added"})
        assert sent.status_code == 204
        server_conversion = conversion_body(
            tag_id,
            {"click_id": real_click(tag_server, env=SERVER_ENV)},
            event_type="refund_made",
            conversion_time=now,
        )
        assert partner.post("/v1/api/conversion", json=server_conversion).status_code == 200

        def counted(report: str, name_field: str, names: str) -> dict[tuple[str, str], int]:
            answer = partner.get(
                f"/v1/api/reports/{report}",
                params={
                    "group_by": f"channel,{name_field}",
                    "filter": f"tag_id:{tag_id}",
                    "names": names,
                },
            )
            assert answer.status_code == 200, answer.text
            return {(r["channel"], r[name_field]): r[report] for r in answer.json()["rows"]}

        assert counted("events", "event_name", "standard") == {
            ("server", "items_added"): 1,
            ("web", "items_added"): 1,
        }
        assert counted("events", "event_name", "custom") == {("web", "my_web_thing"): 1}
        assert counted("conversions", "event_type", "standard") == {
            ("web", "purchase_completed"): 1
        }
        assert counted("conversions", "event_type", "custom") == {("server", "refund_made"): 1}
    # The CLI's report --names, the same query.
    out = cli(
        url,
        "report",
        "events",
        "--group-by",
        "channel,event_name",
        "--filter",
        f"tag_id:{tag_id}",
        "--names",
        "custom",
        "--json",
    )
    rows = json.loads(out)["rows"]
    assert rows == [{"channel": "web", "event_name": "my_web_thing", "events": 1}]
