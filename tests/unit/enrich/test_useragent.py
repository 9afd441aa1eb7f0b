"""enrich/useragent.py: uap-core families, versions, device type and the bot flag.

The samples are strings of uap-core's own test files (tests/test_ua.yaml, test_os.yaml,
test_device.yaml) or of the same shape, with the families the uap-core rules pinned in
ua-parser-builtins give them (uap-core renames a family now and then: TwitterBot became
Twitterbot). README (Enrichment): ua_browser, ua_os, ua_device are "user-agent family, OS family,
device family".
"""

from __future__ import annotations

import pytest

from thrad_events.enrich.useragent import (
    MAX_PARSED_CHARS,
    UserAgentParser,
    crawler_matcher,
    device_type,
)


@pytest.fixture(scope="module")
def parser() -> UserAgentParser:
    return UserAgentParser(cache_size=64)


# (user agent, ua_browser, ua_os, ua_device, ua_device_type)
UAP_SAMPLES = [
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        "Chrome",
        "Windows",
        "Other",
        "desktop",
    ),
    (
        "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36 Edg/120.0.2210.91",
        "Edge",
        "Windows",
        "Other",
        "desktop",
    ),
    (
        "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/17.1 Safari/605.1.15",
        "Safari",
        "Mac OS X",
        "Mac",
        "desktop",
    ),
    (
        "Mozilla/5.0 (X11; Ubuntu; Linux x86_64; rv:121.0) Gecko/20100101 Firefox/121.0",
        "Firefox",
        "Ubuntu",
        "Other",
        "desktop",
    ),
    (
        "Mozilla/5.0 (X11; CrOS x86_64 14541.0.0) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/120.0.0.0 Safari/537.36",
        "Chrome",
        "Chrome OS",
        "Other",
        "desktop",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1",
        "Mobile Safari",
        "iOS",
        "iPhone",
        "mobile",
    ),
    (
        "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
        "(KHTML, like Gecko) CriOS/120.0.6099.119 Mobile/15E148 Safari/604.1",
        "Chrome Mobile iOS",
        "iOS",
        "iPhone",
        "mobile",
    ),
    (
        "Mozilla/5.0 (iPad; CPU OS 16_6 like Mac OS X) AppleWebKit/605.1.15 (KHTML, like Gecko) "
        "Version/16.6 Mobile/15E148 Safari/604.1",
        "Mobile Safari",
        "iOS",
        "iPad",
        "tablet",
    ),
    (
        "Mozilla/5.0 (Linux; Android 4.4.2; Nexus 5 Build/KOT49H) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Chrome/35.0.1916.122 Mobile Safari/537.36",
        "Chrome Mobile",
        "Android",
        "Nexus 5",
        "mobile",
    ),
    (
        "Mozilla/5.0 (Linux; Android 7.1.2; Nexus 5X Build/N2G47W; wv) AppleWebKit/537.36 "
        "(KHTML, like Gecko) Version/4.0 Chrome/58.0.3029.83 Mobile Safari/537.36",
        "Chrome Mobile WebView",
        "Android",
        "Nexus 5X",
        "mobile",
    ),
    (
        "Mozilla/5.0 (Linux; Android 13; SAMSUNG SM-S918B) AppleWebKit/537.36 "
        "(KHTML, like Gecko) SamsungBrowser/23.0 Chrome/115.0.0.0 Mobile Safari/537.36",
        "Samsung Internet",
        "Android",
        "Samsung SM-S918B",
        "mobile",
    ),
    (
        "Mozilla/5.0 (Linux; U; Android 4.0.3; en-us; KFTT Build/IML74K) AppleWebKit/534.30 "
        "(KHTML, like Gecko) Version/4.0 Safari/534.30",
        "Android",
        "Android",
        "Kindle Fire HD",
        "tablet",
    ),
    (
        "Mozilla/5.0 (compatible; MSIE 10.0; Windows Phone 8.0; Trident/6.0; IEMobile/10.0; ARM; "
        "Touch; NOKIA; Lumia 920)",
        "IE Mobile",
        "Windows Phone",
        "Lumia 920",
        "mobile",
    ),
    (
        "Mozilla/5.0 (compatible; Googlebot/2.1; +http://www.google.com/bot.html)",
        "Googlebot",
        "Other",
        "Spider",
        "bot",
    ),
    (
        "facebookexternalhit/1.1 (+http://www.facebook.com/externalhit_uatext.php)",
        "FacebookBot",
        "Other",
        "Spider",
        "bot",
    ),
    ("Twitterbot/1.0", "Twitterbot", "Other", "Spider", "bot"),
]


@pytest.mark.parametrize(
    ("user_agent", "browser", "os", "device", "kind"),
    UAP_SAMPLES,
    ids=[sample[1] + ":" + sample[3] for sample in UAP_SAMPLES],
)
def test_uap_core_families_and_device_type(
    parser: UserAgentParser, user_agent: str, browser: str, os: str, device: str, kind: str
) -> None:
    columns = parser.columns(user_agent)
    assert (columns["ua_browser"], columns["ua_os"], columns["ua_device"]) == (browser, os, device)
    assert columns["ua_device_type"] == kind
    assert columns["ua_is_bot"] == (1 if kind == "bot" else 0)


def test_versions_are_dotted_as_far_as_uap_core_reads_them(parser: UserAgentParser) -> None:
    columns = parser.columns(UAP_SAMPLES[8][0])  # Chrome Mobile 35 on Android 4.4.2
    assert columns["ua_browser_version"] == "35.0.1916.122"
    assert columns["ua_os_version"] == "4.4.2"
    assert parser.columns(UAP_SAMPLES[3][0])["ua_os_version"] is None  # Ubuntu: no version


@pytest.mark.parametrize(
    "user_agent",
    [
        "python-requests/2.31.0",
        "curl/8.4.0",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) "
        "HeadlessChrome/120.0.0.0 Safari/537.36",
    ],
)
def test_clients_on_the_crawler_list_are_bots_though_uap_core_is_silent(
    parser: UserAgentParser, user_agent: str
) -> None:
    columns = parser.columns(user_agent)
    assert columns["ua_device"] != "Spider"
    assert (columns["ua_is_bot"], columns["ua_device_type"]) == (1, "bot")


def test_tvs_and_consoles_are_other(parser: UserAgentParser) -> None:
    tv = (
        "Mozilla/5.0 (Web0S; Linux/SmartTV) AppleWebKit/537.36 (KHTML, like Gecko) "
        "Chrome/79.0.3945.79 Safari/537.36 WebAppManager"
    )
    console = (
        "Mozilla/5.0 (PlayStation; PlayStation 5/2.26) AppleWebKit/605.1.15 (KHTML, like Gecko)"
    )
    assert parser.columns(tv)["ua_device_type"] == "other"
    assert parser.columns(console)["ua_device_type"] == "other"


def test_an_android_browser_without_mobile_is_a_tablet() -> None:
    assert device_type("Mozilla/5.0 (Linux; Android 13; SM-X700) Chrome/120", "Android", False) == (
        "tablet"
    )


def test_an_unknown_string_is_other_and_not_a_bot(parser: UserAgentParser) -> None:
    columns = parser.columns("x")
    assert columns["ua_browser"] == "Other"
    assert (columns["ua_device_type"], columns["ua_is_bot"]) == ("other", 0)


def test_answers_are_cached_per_string(parser: UserAgentParser) -> None:
    first = parser.columns(UAP_SAMPLES[0][0])
    assert parser.columns(UAP_SAMPLES[0][0]) is first


def test_a_hostile_user_agent_is_parsed_by_its_beginning(parser: UserAgentParser) -> None:
    huge = UAP_SAMPLES[0][0] + " (" * 50_000
    assert len(huge) > MAX_PARSED_CHARS
    assert parser.columns(huge)["ua_browser"] == "Chrome"
    assert parser.columns("\x00\uffff" * 1000)["ua_browser"] == "Other"


def test_the_crawler_list_answers_the_same_in_rust_and_in_python() -> None:
    import crawleruseragents

    fast = crawler_matcher()
    for user_agent in [sample[0] for sample in UAP_SAMPLES] + ["okhttp/4.12.0", "Slackbot 1.0"]:
        assert fast(user_agent) == crawleruseragents.is_crawler(user_agent), user_agent
