"""GET /v1/click: signed click links, the landing redirect and the stored click.

Contract: "302 to the landing URL with thrad_click_id=<uuid4>, thrad_exp (unix seconds),
thrad_sig (HMAC of click id and expiry) and thrad_bid_id (when the link carries a bid) appended,
the landing URL's own query and fragment kept; the click is stored first. A bad or missing
signature: 400, and no redirect."
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server import ServerProcess, click_link, export, follow_click
from thrad_events.ingest.clicklinks import ClickLink, click_signature, sign_link

SECRET = "integration-click-secret-0123456789"
ENV = {"THRAD_CLICK_SECRET": SECRET}
LANDING = "https://shop.example.com/landing?utm_source=thrad&x=1#reviews"
THIRTY_DAYS = 30 * 24 * 3600


@pytest.fixture(scope="module")
def click_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("clicks")
    server = ServerProcess(f"sqlite:///{tmp / 'thrad.db'}", tmp / "server.log", env=ENV)
    try:
        yield server
    finally:
        server.stop()
    errors = server.error_lines()
    assert not errors, "server logged errors:\n" + "\n".join(errors)


def _link(server: ServerProcess, landing: str = LANDING, *options: str) -> str:
    return click_link(server.database_url, server.base_url, landing, *options, env=ENV)


def _full_link(server: ServerProcess, bid_id: str = "bid_1") -> str:
    return _link(
        server,
        LANDING,
        "--tag-id",
        "adv_001",
        "--campaign-id",
        "cmp_1",
        "--ad-id",
        "ad_1",
        "--bid-id",
        bid_id,
        "--impression-id",
        "imp_1",
    )


def _clicks(server: ServerProcess) -> list[dict[str, Any]]:
    return export(server.database_url, "clicks")


def test_signed_link_redirects_302_to_the_landing_url_with_thrad_fields(
    click_server: ServerProcess,
) -> None:
    """Contract: 302 with thrad_click_id (uuid4), thrad_exp (unix seconds), thrad_sig (HMAC of
    click id and expiry) and thrad_bid_id appended; the landing query and fragment kept."""
    before = int(time.time())
    response = follow_click(_full_link(click_server))
    after = int(time.time())
    assert response.status_code == 302
    location = httpx.URL(response.headers["location"])
    assert (location.scheme, location.host, location.path) == (
        "https",
        "shop.example.com",
        "/landing",
    )
    assert location.fragment == "reviews"
    params = location.params
    assert params["utm_source"] == "thrad"
    assert params["x"] == "1"
    click_id = params["thrad_click_id"]
    assert uuid.UUID(click_id).version == 4
    assert str(uuid.UUID(click_id)) == click_id
    expires = int(params["thrad_exp"])
    assert before + THIRTY_DAYS <= expires <= after + THIRTY_DAYS
    assert params["thrad_sig"] == click_signature(SECRET, click_id, expires)
    assert params["thrad_bid_id"] == "bid_1"
    assert list(params.keys())[:2] == ["utm_source", "x"]


def test_link_without_a_bid_has_no_thrad_bid_id(click_server: ServerProcess) -> None:
    """Contract: thrad_bid_id only when the link carries a bid."""
    response = follow_click(_link(click_server, "https://shop.example.com/"))
    assert response.status_code == 302
    params = httpx.URL(response.headers["location"]).params
    assert "thrad_click_id" in params
    assert "thrad_bid_id" not in params


def test_the_click_is_stored_with_the_links_fields(click_server: ServerProcess) -> None:
    """Contract: the click is stored first; its row carries the link's fields and request."""
    bid_id = f"bid-{uuid.uuid4().hex[:8]}"
    response = httpx.get(
        _full_link(click_server, bid_id),
        follow_redirects=False,
        headers={"User-Agent": "Mozilla/5.0 test", "Referer": "https://chat.example.ai/"},
    )
    assert response.status_code == 302
    params = httpx.URL(response.headers["location"]).params
    [row] = [r for r in _clicks(click_server) if r["click_id"] == params["thrad_click_id"]]
    assert row["landing_url"] == LANDING
    assert row["tag_id"] == "adv_001"
    assert row["campaign_id"] == "cmp_1"
    assert row["ad_id"] == "ad_1"
    assert row["bid_id"] == bid_id
    assert row["impression_id"] == "imp_1"
    assert row["expires_at"] == int(params["thrad_exp"])
    assert row["user_agent"] == "Mozilla/5.0 test"
    assert row["referrer"] == "https://chat.example.ai/"
    assert row["ip_address"] == "127.0.0.1"
    assert row["received_at"]


def test_every_follow_of_a_link_is_a_new_click(click_server: ServerProcess) -> None:
    """Each click gets its own thrad_click_id (a uuid4), so conversions tie to one click."""
    link = _link(click_server)
    ids = {httpx.URL(follow_click(link).headers["location"]).params["thrad_click_id"] for _ in "ab"}
    assert len(ids) == 2


def _tampered(link: str, **changes: str | None) -> str:
    url = httpx.URL(link)
    params = url.params
    for name, value in changes.items():
        params = params.remove(name) if value is None else params.set(name, value)
    return str(url.copy_with(params=params))


@pytest.fixture(scope="module")
def bad_links(click_server: ServerProcess) -> dict[str, str]:
    """Links that must not redirect, each made from a good one (signed once for the module)."""
    server = click_server
    link = _full_link(server)
    base = f"{server.base_url}/v1/click"
    other_secret = sign_link(
        ClickLink("https://shop.example.com/"), "another-secret-0123456789", server.base_url
    )
    return {
        "no-signature": _tampered(link, sig=None),
        "empty-signature": _tampered(link, sig=""),
        "wrong-signature": _tampered(link, sig="0" * 64),
        "open-redirect": _tampered(link, url="https://evil.example/phish"),
        "tampered-bid": _tampered(link, bid_id="bid_2"),
        "tampered-campaign": _tampered(link, campaign_id="cmp_2"),
        "added-field": _tampered(_link(server), tag_id="adv_999"),
        "unknown-param": link + "&utm_source=x",
        "duplicate-url": link + "&url=https%3A%2F%2Fevil.example%2F",
        "other-secret": other_secret,
        "empty": base,
        "no-landing": f"{base}?tag_id=adv_001",
    }


BAD = [
    "no-signature",
    "empty-signature",
    "wrong-signature",
    "open-redirect",
    "tampered-bid",
    "tampered-campaign",
    "added-field",
    "unknown-param",
    "duplicate-url",
    "other-secret",
    "empty",
    "no-landing",
]


@pytest.mark.parametrize("case", BAD)
def test_bad_or_missing_signature_is_400_json_without_redirect(
    bad_links: dict[str, str], case: str
) -> None:
    """Contract: a bad or missing signature: 400, and no redirect (no Location header)."""
    response = follow_click(bad_links[case])
    assert response.status_code == 400, response.text
    assert "location" not in response.headers
    assert response.headers["content-type"].startswith("application/json")
    error = response.json()["error"]
    assert error["code"] == "bad_click_link"
    assert error["message"]


def test_bad_links_store_no_click(click_server: ServerProcess, bad_links: dict[str, str]) -> None:
    """Contract: the click is stored only for a link that verifies."""
    before = len(_clicks(click_server))
    assert sorted(bad_links) == sorted(BAD)
    for link in bad_links.values():
        assert follow_click(link).status_code == 400
    assert len(_clicks(click_server)) == before


def test_clicks_link_refuses_a_non_http_landing_url(tmp_path: Path) -> None:
    """`clicks link` never signs a javascript: or relative landing URL (no open redirect)."""
    database_url = f"sqlite:///{tmp_path / 'thrad.db'}"
    for landing in ("javascript:alert(1)", "/relative", "ftp://shop.example.com/"):
        with pytest.raises(RuntimeError, match="landing"):
            click_link(database_url, "http://127.0.0.1:8080", landing, env=ENV)
