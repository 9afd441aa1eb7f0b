"""Server-side enrichment through the real server: ip, geo, user agent and campaign columns.

The server runs with MaxMind's GeoIP2 City test database and 127.0.0.1 as a trusted proxy, so
an X-Forwarded-For (or Forwarded) hop or a body's client_ip places a request at one of the
test database's addresses. Seed 002: "The server enriches every row before insert:
ip_address, geo_country, geo_region, geo_city, geo_lat, geo_lon, ua_browser, ua_os, ua_device".
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.integration.server import (
    ServerProcess,
    api_client,
    cli,
    create_key,
    export,
    real_click,
    running_server,
)
from tests.testdata import geoip_db

pytestmark = pytest.mark.integration

IPHONE = (
    "Mozilla/5.0 (iPhone; CPU iPhone OS 17_1 like Mac OS X) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Mobile/15E148 Safari/604.1"
)
CHROME = (
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) "
    "Chrome/120.0.0.0 Safari/537.36"
)
CLICK_ID = "11111111-1111-4111-8111-111111111111"


@pytest.fixture(scope="module")
def geo_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[ServerProcess]:
    folder = tmp_path_factory.mktemp("enrichment")
    env = {
        "THRAD_GEOIP_DB": str(geoip_db("GeoIP2-City-Test")),
        "THRAD_TRUSTED_PROXIES": "127.0.0.1/32",
    }
    with running_server(
        f"sqlite:///{folder / 'thrad.db'}", folder / "server.log", env=env
    ) as process:
        yield process


@pytest.fixture(scope="module")
def http(geo_server: ServerProcess) -> Iterator[httpx.Client]:
    key = create_key(geo_server.database_url, "geo", "enrichment")
    with api_client(geo_server, key["api_key"]) as client:
        yield client


def rows(server: ServerProcess, table: str, **match: Any) -> list[dict[str, Any]]:
    return [
        row
        for row in export(server.database_url, table)
        if all(row.get(k) == v for k, v in match.items())
    ]


def test_collect_row_carries_geo_user_agent_and_campaign_columns(
    geo_server: ServerProcess, http: httpx.Client
) -> None:
    answer = http.post(
        "/v1/api/collect",
        json={
            "event_name": "page_view",
            "event_id": "enrich-collect-1",
            "user_agent": IPHONE,
            "page_url": "https://shop.example.com/p?utm_source=thrad&utm_medium=chat"
            "&utm_campaign=spring&utm_term=shoes&utm_content=v1&thrad_click_id=clk-42",
        },
        headers={"X-Forwarded-For": "6.6.6.6, 81.2.69.142"},
    )
    assert answer.status_code == 204
    [row] = rows(geo_server, "events", event_id="enrich-collect-1")
    assert (row["ip_address"], row["sender_ip"]) == ("81.2.69.142", "81.2.69.142")
    assert (row["geo_country"], row["geo_region"], row["geo_city"]) == ("GB", "ENG", "London")
    assert (row["geo_lat"], row["geo_lon"]) == (51.5142, -0.0931)
    assert (row["ua_browser"], row["ua_os"], row["ua_device"]) == ("Mobile Safari", "iOS", "iPhone")
    assert (row["ua_browser_version"], row["ua_os_version"]) == ("17.1", "17.1")
    assert (row["ua_device_type"], row["ua_is_bot"]) == ("mobile", 0)
    assert [row[f"utm_{name}"] for name in ("source", "medium", "campaign", "term", "content")] == [
        "thrad",
        "chat",
        "spring",
        "shoes",
        "v1",
    ]
    # Seed: capture thrad_click_id from the landing URL; the event named no click of its own.
    assert (row["thrad_click_id"], row["click_id"]) == ("clk-42", "clk-42")


def test_rfc_7239_forwarded_places_an_ipv6_client(
    geo_server: ServerProcess, http: httpx.Client
) -> None:
    answer = http.post(
        "/v1/api/collect",
        json={"event_name": "page_view", "event_id": "enrich-forwarded"},
        headers={"Forwarded": 'for="[2001:218::1]:4711";proto=https'},
    )
    assert answer.status_code == 204
    [row] = rows(geo_server, "events", event_id="enrich-forwarded")
    assert (row["ip_address"], row["geo_country"]) == ("2001:218::1", "JP")
    assert (row["geo_lat"], row["geo_lon"]) == (35.68536, 139.75309)


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("X-Forwarded-For", "not-an-ip, <script>, 999.1.1.1"),
        ("X-Forwarded-For", ",".join(["10.0.0.1"] * 2000 + ["81.2.69.142"])),
        ("Forwarded", 'for="unterminated'),
        ("Forwarded", "for=" + "a" * 4000),
    ],
)
def test_hostile_forwarding_headers_never_fail_the_request(
    geo_server: ServerProcess, http: httpx.Client, name: str, value: str
) -> None:
    event_id = f"enrich-hostile-{name}-{len(value)}"
    answer = http.post(
        "/v1/api/collect", json={"event_name": "x", "event_id": event_id}, headers={name: value}
    )
    assert answer.status_code == 204
    [row] = rows(geo_server, "events", event_id=event_id)
    assert row["ip_address"] == "127.0.0.1"
    assert row["geo_country"] is None


def test_conversion_with_denied_consent_stores_a_truncated_ip_and_region_only(
    geo_server: ServerProcess, http: httpx.Client
) -> None:
    _click(geo_server, "https://shop.example.com/")  # a conversion needs a known click
    [click] = rows(geo_server, "clicks")[-1:]
    consent = {"gdpr_applies": True, "ad_storage": "denied", "analytics_storage": "granted"}
    answer = http.post(
        "/v1/api/conversion",
        json={
            "click_id": click["click_id"],
            "conversion_time": "2026-02-19T18:00:00Z",
            "conversion_value": 49.99,
            "currency": "USD",
            "order_id": "enrich-order-1",
            "client_ip": "89.160.20.112",
            "user_agent": CHROME,
            "page_url": "https://shop.example.com/thanks?utm_source=thrad",
            "consent": consent,
        },
    )
    assert answer.json() == {"status": "ok"}
    [row] = rows(geo_server, "conversions", order_id="enrich-order-1")
    assert (row["ip_address"], row["sender_ip"]) == ("89.160.20.0", "127.0.0.1")
    assert (row["geo_country"], row["geo_region"]) == ("SE", "E")
    assert (row["geo_city"], row["geo_lat"], row["geo_lon"]) == (None, None, None)
    assert (row["ua_browser"], row["ua_device_type"], row["utm_source"]) == (
        "Chrome",
        "desktop",
        "thrad",
    )
    assert row["consent"] == consent


def test_click_row_carries_geo_user_agent_and_landing_campaign(
    geo_server: ServerProcess,
) -> None:
    landing = "https://shop.example.com/spring?utm_source=thrad&utm_campaign=spring-sale"
    click_id = _click(
        geo_server,
        landing,
        headers={"X-Forwarded-For": "216.160.83.56", "User-Agent": IPHONE},
    )
    [row] = rows(geo_server, "clicks", click_id=click_id)
    assert (row["ip_address"], row["geo_country"], row["geo_region"]) == (
        "216.160.83.56",
        "US",
        "WA",
    )
    assert (row["geo_city"], row["geo_lat"], row["geo_lon"]) == ("Milton", 47.2513, -122.3149)
    assert (row["ua_browser"], row["ua_device"], row["ua_device_type"]) == (
        "Mobile Safari",
        "iPhone",
        "mobile",
    )
    assert (row["utm_source"], row["utm_campaign"]) == ("thrad", "spring-sale")


def test_csv_export_has_the_new_columns(geo_server: ServerProcess) -> None:
    header = cli(geo_server.database_url, "export", "events", "--format", "csv").splitlines()[0]
    for column in ("ua_device_type", "ua_is_bot", "utm_source", "thrad_click_id"):
        assert column in header.split(",")


def test_geoip_cli_reports_the_database_and_what_would_be_stored(
    geo_server: ServerProcess,
) -> None:
    env = {"THRAD_GEOIP_DB": str(geoip_db("GeoIP2-City-Test"))}
    info = json.loads(cli(geo_server.database_url, "geoip", "info", "--json", env=env))
    assert (info["kind"], info["database_type"]) == ("mmdb", "GeoIP2-City")
    assert info["build_date"].startswith("20")
    looked_up = json.loads(cli(geo_server.database_url, "geoip", "lookup", "81.2.69.142", env=env))
    assert looked_up == {
        "ip_address": "81.2.69.142",
        "geo_country": "GB",
        "geo_region": "ENG",
        "geo_city": "London",
        "geo_lat": 51.5142,
        "geo_lon": -0.0931,
    }
    bundled = json.loads(cli(geo_server.database_url, "geoip", "lookup", "2001:218::1"))
    assert (bundled["geo_country"], bundled["geo_city"]) == ("JP", None)


def test_sighup_reopens_a_replaced_database_without_a_restart(tmp_path: Path) -> None:
    database = tmp_path / "geo.mmdb"
    _replace(geoip_db("GeoLite2-Country-Test"), database)
    env = {"THRAD_GEOIP_DB": str(database), "THRAD_TRUSTED_PROXIES": "127.0.0.1/32"}
    server = ServerProcess(f"sqlite:///{tmp_path / 'thrad.db'}", tmp_path / "log", env=env)
    try:
        key = create_key(server.database_url)["api_key"]

        def collect(event_id: str) -> None:
            answer = httpx.post(
                f"{server.base_url}/v1/api/collect",
                json={"event_name": "x", "event_id": event_id, "client_ip": "81.2.69.142"},
                headers={"Authorization": f"Bearer {key}"},
            )
            assert answer.status_code == 204

        collect("before")
        _replace(geoip_db("GeoIP2-City-Test"), database)
        os.kill(server.process.pid, signal.SIGHUP)
        time.sleep(0.3)
        collect("after")
        assert server.process.poll() is None
    finally:
        server.stop()
    assert not server.error_lines()
    found = {row["event_id"]: row["geo_city"] for row in export(server.database_url, "events")}
    assert found == {"before": None, "after": "London"}


def _click(server: ServerProcess, landing: str, headers: dict[str, str] | None = None) -> str:
    return real_click(server, "--campaign-id", "cmp-enrich", landing_url=landing, headers=headers)


def _replace(source: Path, target: Path) -> None:
    staging = target.with_suffix(".tmp")
    shutil.copyfile(source, staging)
    os.replace(staging, target)
