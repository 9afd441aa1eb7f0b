"""enrich/enricher.py: the one enrichment stage, alone and inside the pipeline's row building."""

from __future__ import annotations

import json
import logging
from datetime import UTC, datetime
from typing import Any, cast

import pytest

from tests.testdata import geoip_db
from tests.unit.keys import api_key
from thrad_events.config import parse_networks
from thrad_events.enrich.enricher import ENRICHED_COLUMNS, RowEnricher
from thrad_events.enrich.geo import BundledCountries, GeoColumns, open_geo
from thrad_events.enrich.ip import TrustedProxies
from thrad_events.enrich.useragent import UserAgentParser
from thrad_events.fields import CLICKS, CONVERSIONS, EVENTS
from thrad_events.ingest.pipeline import Ingestor, RequestContext
from thrad_events.store.base import Store

CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
LANDING = "https://shop.example.com/p?utm_source=thrad&utm_medium=chat&utm_campaign=spring"


@pytest.fixture(scope="module")
def user_agents() -> UserAgentParser:
    return UserAgentParser(cache_size=64)


@pytest.fixture(scope="module")
def enricher(user_agents: UserAgentParser) -> RowEnricher:
    return RowEnricher(open_geo(str(geoip_db("GeoIP2-City-Test"))), user_agents)


def enrich(enricher: RowEnricher, **given: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "ip_address": "81.2.69.142",
        "sender_ip": "81.2.69.142",
        "user_agent": CHROME,
        "page_url": LANDING,
        "consent": None,
    }
    arguments.update(given)
    return enricher(**arguments)


def test_every_enrichment_column_is_filled(enricher: RowEnricher) -> None:
    columns = enrich(enricher)
    assert set(columns) == set(ENRICHED_COLUMNS)
    assert columns == {
        "ip_address": "81.2.69.142",
        "sender_ip": "81.2.69.142",
        "geo_country": "GB",
        "geo_region": "ENG",
        "geo_city": "London",
        "geo_lat": 51.5142,
        "geo_lon": -0.0931,
        "ua_browser": "Chrome",
        "ua_os": "Windows",
        "ua_device": "Other",
        "ua_browser_version": "120.0.0.0",
        "ua_os_version": "10",
        "ua_device_type": "desktop",
        "ua_is_bot": 0,
        "utm_source": "thrad",
        "utm_medium": "chat",
        "utm_campaign": "spring",
        "utm_term": None,
        "utm_content": None,
        "thrad_click_id": None,
    }


def test_every_enrichment_column_is_a_stored_column() -> None:
    for table in (EVENTS, CONVERSIONS, CLICKS):
        assert set(ENRICHED_COLUMNS) <= set(table.columns)


@pytest.mark.parametrize(
    "consent", [{"ad_storage": "denied"}, {"us_privacy": "1YYN"}, {"gdpr_applies": True}]
)
def test_minimising_consent_truncates_the_ip_and_keeps_geo_to_the_region(
    enricher: RowEnricher, consent: dict[str, Any]
) -> None:
    sent = json.dumps(consent)
    columns = enrich(enricher, consent=consent)
    assert columns["ip_address"] == "81.2.69.0"
    assert columns["sender_ip"] == "81.2.69.0"  # the same end user's address
    assert (columns["geo_country"], columns["geo_region"]) == ("GB", "ENG")
    assert (columns["geo_city"], columns["geo_lat"], columns["geo_lon"]) == (None, None, None)
    assert json.dumps(consent) == sent  # the consent object itself is stored as sent


def test_a_minimised_ipv6_address_keeps_its_slash_48(enricher: RowEnricher) -> None:
    columns = enrich(
        enricher,
        ip_address="2001:218:1:2:3::1",
        sender_ip="2001:218:1:2:3::1",
        consent={"ad_storage": "denied"},
    )
    assert columns["ip_address"] == "2001:218:1::"
    assert columns["geo_country"] == "JP"
    assert (columns["geo_lat"], columns["geo_lon"]) == (None, None)


def test_a_server_senders_own_address_is_kept_for_audit(enricher: RowEnricher) -> None:
    columns = enrich(enricher, sender_ip="198.51.100.7", consent={"ad_storage": "denied"})
    assert (columns["ip_address"], columns["sender_ip"]) == ("81.2.69.0", "198.51.100.7")


def test_the_cached_geo_answer_is_not_changed_by_minimising(enricher: RowEnricher) -> None:
    enrich(enricher, consent={"ad_storage": "denied"})
    assert enrich(enricher)["geo_city"] == "London"


def test_no_user_agent_and_no_address_leave_their_columns_empty(enricher: RowEnricher) -> None:
    columns = enrich(enricher, ip_address=None, sender_ip=None, user_agent="", page_url=None)
    assert all(value is None for value in columns.values())


def test_a_failing_helper_leaves_its_columns_empty_is_logged_once_and_counted_each_time(
    user_agents: UserAgentParser, caplog: pytest.LogCaptureFixture
) -> None:
    class Broken(BundledCountries):
        def lookup(self, ip_address: str) -> GeoColumns:
            raise RuntimeError("boom")

    failures: list[str] = []
    enricher = RowEnricher(Broken(), user_agents, on_failure=failures.append)
    with caplog.at_level(logging.ERROR, logger="thrad_events.enrich.enricher"):
        for _ in range(3):
            columns = enrich(enricher)
            assert columns["geo_country"] is None
            assert columns["ua_browser"] == "Chrome"
    assert len(caplog.records) == 1
    assert failures == ["geo", "geo", "geo"]


# -- inside the pipeline -----------------------------------------------------------------------

KEY = api_key()


@pytest.fixture(scope="module")
def ingestor(enricher: RowEnricher) -> Ingestor:
    # Building a row does no I/O: the store is never touched.
    return Ingestor(
        cast(Store, None),
        proxies=TrustedProxies(parse_networks("127.0.0.1/32", "test")),
        click_secret="s" * 32,
        click_ttl_s=60,
        enricher=enricher,
    )


def context(**given: Any) -> RequestContext:
    return RequestContext(
        peer_ip="127.0.0.1", received_at=datetime(2026, 2, 19, tzinfo=UTC), **given
    )


def body(**fields: Any) -> bytes:
    return json.dumps({"event_name": "page_view", **fields}).encode()


def test_an_event_without_click_id_takes_the_page_urls_thrad_click_id(ingestor: Ingestor) -> None:
    url = "https://shop.example.com/?thrad_click_id=abc-123&utm_source=thrad"
    row = ingestor.event_row(body(page_url=url), KEY, context())
    assert (row["click_id"], row["thrad_click_id"], row["utm_source"]) == (
        "abc-123",
        "abc-123",
        "thrad",
    )


def test_an_events_own_click_id_wins_over_the_page_urls(ingestor: Ingestor) -> None:
    url = "https://shop.example.com/?thrad_click_id=from-url"
    row = ingestor.event_row(body(page_url=url, click_id="given"), KEY, context())
    assert (row["click_id"], row["thrad_click_id"]) == ("given", "from-url")


def test_the_forwarded_header_of_a_trusted_proxy_locates_the_event(ingestor: Ingestor) -> None:
    row = ingestor.event_row(body(), KEY, context(forwarded='for="[2001:218::1]:443"'))
    assert (row["ip_address"], row["geo_country"]) == ("2001:218::1", "JP")


def test_client_ip_is_located_and_the_sender_kept(ingestor: Ingestor) -> None:
    row = ingestor.event_row(
        body(client_ip="89.160.20.112"), KEY, context(forwarded_for="216.160.83.56")
    )
    assert (row["ip_address"], row["sender_ip"]) == ("89.160.20.112", "216.160.83.56")
    assert (row["geo_country"], row["geo_city"]) == ("SE", "Linköping")


def test_a_conversion_is_enriched_and_minimised_by_its_consent(ingestor: Ingestor) -> None:
    conversion = {
        "click_id": "11111111-1111-4111-8111-111111111111",
        "conversion_time": "2026-02-19T18:00:00Z",
        "conversion_value": 49.99,
        "currency": "USD",
        "user_agent": CHROME,
        "page_url": LANDING,
        "client_ip": "81.2.69.142",
        "consent": {"us_privacy": "1YYN"},
    }
    row = ingestor.conversion_row(json.dumps(conversion).encode(), KEY, context())
    assert (row["ip_address"], row["sender_ip"]) == ("81.2.69.0", "127.0.0.1")
    assert (row["geo_region"], row["geo_city"]) == ("ENG", None)
    assert (row["ua_browser"], row["utm_campaign"]) == ("Chrome", "spring")
    assert row["consent"] == {"us_privacy": "1YYN"}
