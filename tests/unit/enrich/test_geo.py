"""enrich/geo.py against MaxMind's official test databases (tests/data/geoip).

Expected values are MaxMind's published source data for those databases
(MaxMind-DB/source-data/GeoIP2-City-Test.json): 81.2.69.142 is London, England;
89.160.20.112 Linköping, Östergötland (SE-E); 216.160.83.56 Milton, Washington;
2001:218::/32 Japan.
"""

from __future__ import annotations

import logging
import os
import shutil
from pathlib import Path

import pytest

from tests.testdata import geoip_db
from thrad_events.enrich.geo import (
    NO_GEO,
    BundledCountries,
    MaxMindDatabase,
    columns_of_record,
    geo_columns,
    open_geo,
)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture(scope="module")
def city() -> MaxMindDatabase:
    geo = open_geo(str(geoip_db("GeoIP2-City-Test")))
    assert isinstance(geo, MaxMindDatabase)
    return geo


@pytest.mark.parametrize(
    ("ip", "country", "region", "city_name", "lat", "lon"),
    [
        ("81.2.69.142", "GB", "ENG", "London", 51.5142, -0.0931),
        ("89.160.20.112", "SE", "E", "Linköping", 58.4167, 15.6167),
        ("216.160.83.56", "US", "WA", "Milton", 47.2513, -122.3149),
        ("175.16.199.1", "CN", "22", "Changchun", 43.88, 125.3228),
        ("2001:218::1", "JP", None, None, 35.68536, 139.75309),
        ("2a02:cf40::1", "NO", None, None, 62.0, 10.0),
    ],
)
def test_city_database_gives_country_region_city_and_coordinates(
    city: MaxMindDatabase,
    ip: str,
    country: str,
    region: str | None,
    city_name: str | None,
    lat: float,
    lon: float,
) -> None:
    assert city.lookup(ip) == geo_columns(country, region, city_name, lat, lon)


def test_an_ipv4_mapped_address_finds_its_ipv4_record(city: MaxMindDatabase) -> None:
    assert city.lookup("::ffff:81.2.69.142")["geo_city"] == "London"


def test_an_address_the_database_does_not_hold_has_no_geo(city: MaxMindDatabase) -> None:
    # The configured database is the one authority: no answer from the bundled data mixed in.
    assert city.lookup("8.8.8.8") == NO_GEO
    assert city.lookup("10.0.0.1") == NO_GEO
    assert city.lookup("not an address") == NO_GEO


def test_geolite2_city_reads_the_same_way() -> None:
    geo = open_geo(str(geoip_db("GeoLite2-City-Test")))
    assert geo.lookup("2001:480::1") == geo_columns("US", "CA", "San Diego", 32.7203, -117.1552)


def test_a_country_database_fills_geo_country_only() -> None:
    geo = open_geo(str(geoip_db("GeoLite2-Country-Test")))
    assert geo.lookup("81.2.69.142") == geo_columns("GB")
    assert geo.lookup("2001:218::1") == geo_columns("JP")


def test_source_names_the_database_type_and_build_date(city: MaxMindDatabase) -> None:
    source = city.source()
    assert source.kind == "mmdb"
    assert source.database_type == "GeoIP2-City"
    assert str(source.build_date).startswith("20")
    assert str(source.path).endswith("GeoIP2-City-Test.mmdb")


# -- the bundled country data ------------------------------------------------------------------


def test_without_configuration_the_bundled_data_gives_the_country() -> None:
    geo = open_geo(None)
    assert isinstance(geo, BundledCountries)
    assert geo.lookup("81.2.69.142")["geo_country"] == "GB"
    assert geo.lookup("2001:218::1")["geo_country"] == "JP"
    assert geo.lookup("8.8.8.8") == geo_columns("US")


def test_the_bundled_data_has_nothing_for_private_or_bad_addresses() -> None:
    geo = BundledCountries()
    assert geo.lookup("10.1.2.3") == NO_GEO
    assert geo.lookup("::1") == NO_GEO
    assert geo.lookup("garbage") == NO_GEO


def test_the_bundled_source_says_what_it_is() -> None:
    source = BundledCountries().source()
    assert source.kind == "bundled"
    assert "iptocc" in source.database_type


# -- missing, broken and replaced files --------------------------------------------------------


def test_a_missing_file_is_logged_once_and_the_bundled_countries_answer(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = Clock()
    with caplog.at_level(logging.WARNING, logger="thrad_events.enrich.geo"):
        geo = MaxMindDatabase(str(tmp_path / "absent.mmdb"), BundledCountries(), clock=clock)
        for _ in range(3):
            clock.now += 10
            assert geo.lookup("81.2.69.142") == geo_columns("GB")
    assert len([r for r in caplog.records if "not readable" in r.message]) == 1
    assert geo.source().kind == "bundled"
    assert geo.source().note is not None


def test_a_corrupt_file_at_start_up_falls_back_to_the_bundled_countries(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "broken.mmdb"
    path.write_bytes(b"not a maxmind database" * 100)
    with caplog.at_level(logging.WARNING, logger="thrad_events.enrich.geo"):
        geo = MaxMindDatabase(str(path), BundledCountries(), clock=Clock())
    assert geo.lookup("8.8.8.8") == geo_columns("US")
    assert any("not a valid .mmdb" in r.message for r in caplog.records)


def _replace(source: Path, target: Path) -> None:
    """Replace the file the way updaters should: a new file renamed over the old one."""
    staging = target.with_suffix(".tmp")
    shutil.copyfile(source, staging)
    os.replace(staging, target)


def test_a_replaced_file_is_picked_up_after_the_check_interval(tmp_path: Path) -> None:
    path = tmp_path / "geo.mmdb"
    _replace(geoip_db("GeoIP2-City-Test"), path)
    clock = Clock()
    geo = MaxMindDatabase(str(path), BundledCountries(), check_interval_s=5, clock=clock)
    assert geo.lookup("81.2.69.142")["geo_city"] == "London"

    _replace(geoip_db("GeoLite2-Country-Test"), path)
    clock.now += 1
    assert geo.lookup("81.2.69.142")["geo_city"] == "London"  # not looked at yet
    clock.now += 5
    assert geo.lookup("81.2.69.142") == geo_columns("GB")
    assert geo.source().database_type == "GeoLite2-Country"


def test_a_reload_request_reopens_at_once(tmp_path: Path) -> None:
    path = tmp_path / "geo.mmdb"
    _replace(geoip_db("GeoLite2-Country-Test"), path)
    geo = MaxMindDatabase(str(path), BundledCountries(), check_interval_s=3600, clock=Clock())
    assert geo.lookup("81.2.69.142") == geo_columns("GB")
    _replace(geoip_db("GeoIP2-City-Test"), path)
    geo.request_reload()  # what SIGHUP does
    assert geo.lookup("81.2.69.142")["geo_city"] == "London"


def test_a_broken_replacement_keeps_the_last_good_database(tmp_path: Path) -> None:
    path = tmp_path / "geo.mmdb"
    _replace(geoip_db("GeoIP2-City-Test"), path)
    clock = Clock()
    geo = MaxMindDatabase(str(path), BundledCountries(), check_interval_s=5, clock=clock)
    broken = tmp_path / "broken"
    broken.write_bytes(b"\x00" * 4096)
    _replace(broken, path)
    clock.now += 6
    assert geo.lookup("81.2.69.142")["geo_city"] == "London"


def test_a_file_that_appears_later_is_loaded(tmp_path: Path) -> None:
    path = tmp_path / "later.mmdb"
    clock = Clock()
    geo = MaxMindDatabase(str(path), BundledCountries(), check_interval_s=5, clock=clock)
    assert geo.lookup("81.2.69.142") == geo_columns("GB")
    _replace(geoip_db("GeoIP2-City-Test"), path)
    clock.now += 6
    assert geo.lookup("81.2.69.142")["geo_city"] == "London"


# -- records of other vendors ------------------------------------------------------------------


def test_a_db_ip_lite_record_without_subdivision_codes_gives_the_region_name() -> None:
    record = {
        "city": {"names": {"en": "Mountain View"}},
        "country": {"iso_code": "US", "names": {"en": "United States"}},
        "location": {"latitude": 37.4223, "longitude": -122.085},
        "subdivisions": [{"names": {"en": "California"}}],
    }
    assert columns_of_record(record) == geo_columns(
        "US", "California", "Mountain View", 37.4223, -122.085
    )


def test_a_record_without_country_falls_back_to_the_registered_country() -> None:
    assert columns_of_record({"registered_country": {"iso_code": "RO"}}) == geo_columns("RO")


@pytest.mark.parametrize(
    "record", [None, [], "GB", {}, {"country": "GB"}, {"location": {"latitude": "x"}}]
)
def test_odd_records_give_no_geo_never_an_error(record: object) -> None:
    assert columns_of_record(record) == NO_GEO
