"""The browser Tag end to end in a real headless Chromium, and tag.js's own behaviour.

A visitor follows a real signed click link; the server redirects to the advertiser's landing
page (another origin, served by tests/landing.py) with thrad_click_id, thrad_exp, thrad_sig and
thrad_bid_id; the page loads /v1/tag.js through the paste-in snippet, fires an event and a
conversion, and closes. Both rows must be stored with the click, channel "web" and the browser's
user agent parsed. A page on a foreign origin stores nothing; consent denied sends nothing.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page

from tests.integration.server import ServerProcess, click_link, running_server
from tests.integration.tagging import SERVER_ENV, new_tag_id, register_tag, wait_for_rows
from tests.landing import LandingSite, landing_site
from thrad_events.enrich.useragent import UserAgentParser

NINETY_DAYS_S = 90 * 24 * 3600
README = Path(__file__).parents[2] / "README.md"


@pytest.fixture(scope="module")
def tag_server(
    shared_database_url: str, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[ServerProcess]:
    tmp = tmp_path_factory.mktemp("tag-browser")
    with running_server(shared_database_url, tmp / "server.log", env=SERVER_ENV) as process:
        yield process


@pytest.fixture(scope="module")
def site() -> Iterator[LandingSite]:
    with landing_site() as found:
        yield found


@pytest.fixture(scope="module")
def tag_id(tag_server: ServerProcess, site: LandingSite) -> str:
    """acme's tag, registered for the landing site's http://localhost origin only."""
    found = new_tag_id()
    register_tag(tag_server.database_url, "acme", found, site.origin("localhost"))
    return found


@pytest.fixture
def context(chromium: Browser) -> Iterator[BrowserContext]:
    """A fresh browser profile (cookies) per test."""
    ctx = chromium.new_context()
    try:
        yield ctx
    finally:
        ctx.close()


def page_html(server: ServerProcess, calls: str, before: str = "") -> str:
    """A landing page with the snippet an advertiser pastes, then the page's `calls`, which run
    before tag.js has loaded and wait in the queue. `before` runs first (test instruments)."""
    return f"""<!doctype html><html><head><title>Shop</title>
<script>
window.pageErrors = [];
window.addEventListener("error", function (e) {{ window.pageErrors.push(String(e.message)); }});
{before}
</script>
<script>
  window.thradTag = window.thradTag || function () {{
    (thradTag.q = thradTag.q || []).push(arguments); }};
  {calls}
</script>
<script async src="{server.base_url}/v1/tag.js"></script>
</head><body><h1>Shop</h1></body></html>"""


# Counts what the Tag hands to the browser to send, synchronously, before tag.js loads.
RECORD_SENDS = """
window.sent = [];
var beacon = navigator.sendBeacon.bind(navigator);
navigator.sendBeacon = function (url, data) { window.sent.push(url); return beacon(url, data); };
var realFetch = window.fetch;
window.fetch = function (url, init) { window.sent.push(String(url)); return realFetch(url, init); };
"""


def wait_for_tag(page: Page) -> None:
    """tag.js has loaded and replaced the queueing stub (its queue is replayed by then)."""
    page.wait_for_function("typeof thradTag === 'function' && !('q' in thradTag)")


def follow_click_to(server: ServerProcess, page: Page, landing_url: str, bid_id: str) -> str:
    """A visitor clicks a real signed link; returns the landing URL the redirect opened."""
    link = click_link(
        server.database_url, server.base_url, landing_url, "--bid-id", bid_id, env=SERVER_ENV
    )
    page.goto(link)
    return page.url


def test_a_visitor_from_a_click_converts_in_the_browser_end_to_end(
    tag_server: ServerProcess, site: LandingSite, tag_id: str, context: BrowserContext
) -> None:
    order_id, bid_id = str(uuid.uuid4()), "bid-" + uuid.uuid4().hex[:8]
    site.pages["/landing"] = page_html(
        tag_server,
        f"""thradTag("set", {{tag_id: "{tag_id}"}});
  thradTag("event", "contents_viewed", {{sku: "p-42"}});
  thradTag("conversion", {{conversion_value: 49.99, currency: "USD", order_id: "{order_id}"}});""",
    )
    page = context.new_page()
    landed = follow_click_to(tag_server, page, f"{site.origin()}/landing?ref=chat", bid_id)
    params = httpx.URL(landed).params
    assert landed.startswith(f"{site.origin()}/landing?ref=chat&thrad_click_id=")
    click_id = params["thrad_click_id"]
    wait_for_tag(page)
    user_agent = page.evaluate("navigator.userAgent")
    assert page.evaluate("window.pageErrors") == []
    page.close()

    url = tag_server.database_url
    [event] = wait_for_rows(
        url,
        "events",
        lambda r: (
            r["tag_id"] == tag_id
            and r["event_name"] == "contents_viewed"
            and r["click_id"] == click_id
        ),
    )
    [conversion] = wait_for_rows(url, "conversions", lambda r: r["order_id"] == order_id)
    parsed = UserAgentParser().columns(user_agent)
    for row in (event, conversion):
        assert row["channel"] == "web"
        assert row["click_id"] == click_id
        assert row["tag_id"] == tag_id
        assert row["params"]["integration"] == "tag"
        assert row["user_agent"] == user_agent
        assert row["ua_browser"] == parsed["ua_browser"]
        assert row["ua_browser"] is not None
        assert row["page_url"] == landed
    assert event["bid_id"] == bid_id
    assert event["params"]["sku"] == "p-42"
    assert (conversion["conversion_value"], conversion["currency"]) == ("49.99", "USD")


def test_the_click_is_kept_in_first_party_cookies_for_90_days_and_used_later(
    tag_server: ServerProcess, site: LandingSite, tag_id: str, context: BrowserContext
) -> None:
    site.pages["/first"] = page_html(tag_server, f'thradTag("set", {{tag_id: "{tag_id}"}});')
    page = context.new_page()
    landed = follow_click_to(tag_server, page, f"{site.origin()}/first", "b-1")
    wait_for_tag(page)
    cookies = {c["name"]: c for c in context.cookies(site.origin())}
    assert set(cookies) == {"thrad_click_id", "thrad_exp", "thrad_sig", "thrad_bid_id"}
    assert cookies["thrad_click_id"]["value"] == httpx.URL(landed).params["thrad_click_id"]
    lifetime = cookies["thrad_click_id"]["expires"] - time.time()
    assert NINETY_DAYS_S - 3600 < lifetime <= NINETY_DAYS_S
    page.close()

    # A later page of the site, without thrad_* in its URL, still carries the click.
    order_id = str(uuid.uuid4())
    site.pages["/later"] = page_html(
        tag_server,
        f"""thradTag("set", {{tag_id: "{tag_id}"}});
  thradTag("conversion", {{conversion_value: 5, currency: "EUR", order_id: "{order_id}"}});""",
    )
    later = context.new_page()
    later.goto(f"{site.origin()}/later")
    wait_for_tag(later)
    later.close()
    [row] = wait_for_rows(
        tag_server.database_url, "conversions", lambda r: r["order_id"] == order_id
    )
    assert row["click_id"] == cookies["thrad_click_id"]["value"]


def test_a_page_on_a_foreign_origin_stores_nothing(
    tag_server: ServerProcess, site: LandingSite, tag_id: str, context: BrowserContext
) -> None:
    """The same page served from http://127.0.0.1 (not the tag's origin) is refused."""
    name = "foreign_" + uuid.uuid4().hex[:8]
    site.pages["/foreign"] = page_html(
        tag_server, f'thradTag("set", {{tag_id: "{tag_id}"}}); thradTag("event", "{name}");'
    )
    page = context.new_page()
    rejected_before = tag_server.log().count('"origin_not_allowed"')
    page.goto(f"{site.origin('127.0.0.1')}/foreign")
    wait_for_tag(page)
    page.close()
    deadline = time.monotonic() + 20
    while tag_server.log().count('"origin_not_allowed"') == rejected_before:
        assert time.monotonic() < deadline, "the foreign page's beacon never reached the server"
        time.sleep(0.2)
    assert (
        wait_for_rows(
            tag_server.database_url, "events", lambda r: r["event_name"] == name, timeout_s=0
        )
        == []
    )


def test_nothing_leaves_the_browser_while_consent_denies_ad_storage(
    tag_server: ServerProcess, site: LandingSite, tag_id: str, context: BrowserContext
) -> None:
    denied, granted = "denied_" + uuid.uuid4().hex[:8], "granted_" + uuid.uuid4().hex[:8]
    site.pages["/consent"] = page_html(
        tag_server,
        f"""thradTag("consent", {{ad_storage: "denied"}});
  thradTag("set", {{tag_id: "{tag_id}"}});
  thradTag("event", "{denied}");
  thradTag("conversion", {{conversion_value: 1, currency: "USD"}});""",
        before=RECORD_SENDS,
    )
    page = context.new_page()
    follow_click_to(tag_server, page, f"{site.origin()}/consent", "b-2")
    wait_for_tag(page)
    assert page.evaluate("window.sent") == []
    assert context.cookies(site.origin()) == []
    page.close()

    # The same visitor grants consent on a later page: its event is sent, with the state.
    site.pages["/granted"] = page_html(
        tag_server,
        f"""thradTag("consent", {{ad_storage: "granted"}});
  thradTag("set", {{tag_id: "{tag_id}"}});
  thradTag("event", "{granted}");""",
    )
    later = context.new_page()
    later.goto(f"{site.origin()}/granted")
    wait_for_tag(later)
    later.close()
    [row] = wait_for_rows(tag_server.database_url, "events", lambda r: r["event_name"] == granted)
    assert row["consent"] == {"ad_storage": "granted"}
    assert (
        wait_for_rows(
            tag_server.database_url, "events", lambda r: r["event_name"] == denied, timeout_s=0
        )
        == []
    )


def test_events_held_while_denied_are_sent_once_consent_is_granted_and_cookies_follow(
    tag_server: ServerProcess, site: LandingSite, tag_id: str, context: BrowserContext
) -> None:
    name = "held_" + uuid.uuid4().hex[:8]
    site.pages["/held"] = page_html(
        tag_server,
        f"""thradTag("consent", {{ad_storage: "denied"}});
  thradTag("set", {{tag_id: "{tag_id}"}});
  thradTag("event", "{name}");""",
        before=RECORD_SENDS,
    )
    page = context.new_page()
    follow_click_to(tag_server, page, f"{site.origin()}/held", "b-3")
    wait_for_tag(page)
    assert page.evaluate("window.sent") == []
    page.evaluate('thradTag("consent", {ad_storage: "granted"})')
    assert len(page.evaluate("window.sent")) == 1
    assert {c["name"] for c in context.cookies(site.origin())} >= {"thrad_click_id"}
    page.evaluate('thradTag("consent", {ad_storage: "denied"})')
    assert context.cookies(site.origin()) == []
    page.close()
    [row] = wait_for_rows(tag_server.database_url, "events", lambda r: r["event_name"] == name)
    assert row["consent"] == {"ad_storage": "granted"}


def test_the_tag_never_throws_into_the_page(
    tag_server: ServerProcess, site: LandingSite, tag_id: str, context: BrowserContext
) -> None:
    site.pages["/hostile"] = page_html(
        tag_server,
        f"""thradTag();
  thradTag("nonsense", 1, 2);
  thradTag("event");
  thradTag("event", {{not: "a name"}});
  thradTag("set", null);
  thradTag("consent", "yes");
  thradTag("conversion", null);
  var loop = {{}}; loop.self = loop;
  thradTag("set", {{tag_id: "{tag_id}"}});
  thradTag("event", "cyclic", loop);""",
    )
    page = context.new_page()
    page.goto(f"{site.origin()}/hostile?thrad_click_id=not-a-uuid&thrad_sig=%3Cscript%3E")
    wait_for_tag(page)
    page.evaluate('thradTag("event", "after_load", {ok: true}); thradTag(undefined)')
    assert page.evaluate("window.pageErrors") == []
    # Malformed click parameters are not kept.
    assert context.cookies(site.origin()) == []
    page.close()


# A browser where sendBeacon refuses (as it does past its quota) or is missing: fetch it is.
BEACON_REFUSES = """
window.fetched = [];
var realFetch = window.fetch;
window.fetch = function (url, init) {
  window.fetched.push([String(url), init.keepalive, init.body]);
  return realFetch(url, init);
};
navigator.sendBeacon = function () { return false; };
"""
BEACON_MISSING = BEACON_REFUSES.replace(
    "navigator.sendBeacon = function () { return false; };", "navigator.sendBeacon = undefined;"
)


@pytest.mark.parametrize("beacon", [BEACON_REFUSES, BEACON_MISSING], ids=["refuses", "missing"])
def test_without_a_beacon_the_tag_delivers_by_fetch_with_keepalive(
    tag_server: ServerProcess,
    site: LandingSite,
    tag_id: str,
    context: BrowserContext,
    beacon: str,
) -> None:
    name = "fetched_" + uuid.uuid4().hex[:8]
    site.pages["/fetch"] = page_html(
        tag_server,
        f'thradTag("set", {{tag_id: "{tag_id}"}}); thradTag("event", "{name}");',
        before=beacon,
    )
    page = context.new_page()
    page.goto(f"{site.origin()}/fetch")
    wait_for_tag(page)
    [(url, keepalive, body)] = page.evaluate("window.fetched")
    assert page.evaluate("window.pageErrors") == []
    page.close()
    assert (url, keepalive) == (f"{tag_server.base_url}/v1/tag/collect", True)
    assert name in body
    [row] = wait_for_rows(tag_server.database_url, "events", lambda r: r["event_name"] == name)
    assert (row["channel"], row["tag_id"]) == ("web", tag_id)


def test_tag_js_is_cacheable_and_small(tag_server: ServerProcess) -> None:
    plain = httpx.get(f"{tag_server.base_url}/v1/tag.js")
    assert plain.headers["content-type"].startswith("application/javascript")
    assert "max-age" in plain.headers["cache-control"]
    again = httpx.get(
        f"{tag_server.base_url}/v1/tag.js", headers={"if-none-match": plain.headers["etag"]}
    )
    assert (again.status_code, again.content) == (304, b"")
    packed = httpx.get(f"{tag_server.base_url}/v1/tag.js", headers={"accept-encoding": "gzip"})
    assert packed.headers["content-encoding"] == "gzip"
    assert packed.content == plain.content
    gzipped = int(packed.headers["content-length"])
    assert gzipped < 5 * 1024
    # The sizes the README states are the served ones (kB of 1000 bytes, to a tenth).
    stated = re.search(
        r"`/v1/tag.js` is ([\d.]+) KB gzipped \(([\d.]+) KB plain\)", README.read_text()
    )
    assert stated is not None
    assert (float(stated[1]), float(stated[2])) == (
        round(gzipped / 1000, 1),
        round(len(plain.content) / 1000, 1),
    )
