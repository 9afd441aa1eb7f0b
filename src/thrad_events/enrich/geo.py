"""Where an IP address is: a MaxMind-format .mmdb when configured, else bundled country data.

The .mmdb (GeoIP2/GeoLite2 City or Country, DB-IP Lite City or Country) is read through the
`maxminddb` C extension, memory-mapped, so every worker shares the page cache. It is re-opened
without a restart when the file changes (its mtime, size and inode are looked at most every
CHECK_INTERVAL_S) or when a reload is requested (SIGHUP). A file missing or unreadable at
start-up is logged once at warning and the bundled country data answers instead; a file that
breaks later leaves the last good one in use. A lookup never raises.

The bundled data is the `iptocc` package: the five Regional Internet Registries' delegated
statistics compiled into the wheel, country only.
"""

from __future__ import annotations

import contextlib
import functools
import json
import logging
import os
import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from importlib import metadata
from typing import Any, Protocol

import iptocc
import maxminddb
from maxminddb.errors import InvalidDatabaseError

from thrad_events.fields import GEO_FIELDS
from thrad_events.instants import show_time

log = logging.getLogger(__name__)

# How often (at most) the .mmdb file is looked at for a replacement.
CHECK_INTERVAL_S = 5.0
# Distinct addresses whose answer is remembered; cleared when the database changes.
CACHE_SIZE = 8192
GEO_COLUMNS = GEO_FIELDS

GeoColumns = Mapping[str, Any]


def geo_columns(
    country: str | None = None,
    region: str | None = None,
    city: str | None = None,
    lat: float | None = None,
    lon: float | None = None,
) -> GeoColumns:
    return dict(zip(GEO_FIELDS, (country, region, city, lat, lon), strict=True))


NO_GEO: GeoColumns = geo_columns()


@dataclass(frozen=True, slots=True)
class GeoSource:
    """What answers geo lookups, for `thrad-events geoip info` and the start-up log."""

    kind: str  # "mmdb" or "bundled"
    database_type: str  # the .mmdb's own type (GeoIP2-City, DBIP-Country-Lite, ...)
    build_date: str | None  # ISO-8601 UTC
    path: str | None = None
    description: str | None = None
    ip_version: int | None = None
    note: str | None = None  # why the bundled data answers although a file was configured

    def as_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "database_type": self.database_type,
            "build_date": self.build_date,
            "path": self.path,
            "description": self.description,
            "ip_version": self.ip_version,
            "note": self.note,
        }


class GeoLookup(Protocol):
    def lookup(self, ip_address: str) -> GeoColumns:
        """geo_* columns for a canonical IP address; NO_GEO when nothing is known."""
        ...

    def source(self) -> GeoSource: ...

    def request_reload(self) -> None:
        """Re-open the database at the next lookup (safe to call from a signal handler)."""
        ...


class BundledCountries:
    """geo_country from the iptocc package's RIR data; the other geo columns stay empty."""

    def lookup(self, ip_address: str) -> GeoColumns:
        try:
            country = iptocc.country_code(ip_address)
        except (ValueError, TypeError):
            return NO_GEO
        return geo_columns(country) if country else NO_GEO

    def source(self) -> GeoSource:
        return GeoSource(
            kind="bundled",
            database_type=f"iptocc {_version('iptocc')} (RIR delegated statistics, country only)",
            build_date=_iptocc_build_date(),
        )

    def request_reload(self) -> None:
        pass


class MaxMindDatabase:
    """A .mmdb file, re-opened when it changes; the bundled countries while it cannot be read."""

    def __init__(
        self,
        path: str,
        fallback: GeoLookup,
        *,
        check_interval_s: float = CHECK_INTERVAL_S,
        cache_size: int = CACHE_SIZE,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.path = path
        self._fallback = fallback
        self._check_interval_s = check_interval_s
        self._cache_size = cache_size
        self._clock = clock
        self._lock = threading.Lock()
        self._reader: maxminddb.Reader | None = None
        self._signature: tuple[int, int, int] | None = None
        self._failed_signature: tuple[int, int, int] | None = None
        self._warned_missing = False
        self._reload_requested = False
        self._lookup_cached = self._new_cache()
        self._next_check = clock() + check_interval_s
        self._open(force=True)

    # -- lookups ---------------------------------------------------------------------------

    def lookup(self, ip_address: str) -> GeoColumns:
        now = self._clock()
        if now >= self._next_check or self._reload_requested:
            self._check(now)
        if self._reader is None:
            return self._fallback.lookup(ip_address)
        return self._lookup_cached(ip_address)

    def _new_cache(self) -> Callable[[str], GeoColumns]:
        return functools.lru_cache(maxsize=self._cache_size)(self._lookup_uncached)

    def _lookup_uncached(self, ip_address: str) -> GeoColumns:
        reader = self._reader
        if reader is None:
            return self._fallback.lookup(ip_address)
        try:
            record = reader.get(ip_address)
        except ValueError:
            # Not an address, or an IPv6 address asked of an IPv4-only database.
            return NO_GEO
        except InvalidDatabaseError as exc:
            # The file was overwritten in place under the mapping; the next check re-opens it.
            log.warning("geoip lookup failed, database damaged: %s", exc)
            self._next_check = 0.0
            return NO_GEO
        return columns_of_record(record)

    # -- reloading -------------------------------------------------------------------------

    def request_reload(self) -> None:
        self._reload_requested = True

    def _check(self, now: float) -> None:
        if not self._lock.acquire(blocking=False):
            return  # another thread is re-opening it right now
        try:
            self._next_check = now + self._check_interval_s
            force, self._reload_requested = self._reload_requested, False
            self._open(force=force)
        finally:
            self._lock.release()

    def _open(self, *, force: bool) -> None:
        try:
            stat = os.stat(self.path)
        except OSError as exc:
            if not self._warned_missing:
                self._warned_missing = True
                what = "the last one loaded" if self._reader else "bundled country data"
                log.warning("geoip database %s not readable (%s); using %s", self.path, exc, what)
            return
        self._warned_missing = False
        signature = (stat.st_mtime_ns, stat.st_size, stat.st_ino)
        if not force and signature in (self._signature, self._failed_signature):
            return
        try:
            reader = maxminddb.open_database(self.path, maxminddb.MODE_AUTO)
            reader.metadata()
        except (OSError, ValueError, InvalidDatabaseError) as exc:
            self._failed_signature = signature
            what = "keeping the last one loaded" if self._reader else "using bundled country data"
            log.warning("geoip database %s is not a valid .mmdb (%s); %s", self.path, exc, what)
            return
        # The old reader is not closed: a lookup on another thread may still hold it, and the
        # mapping goes when the last reference does.
        self._reader = reader
        self._signature = signature
        self._failed_signature = None
        self._lookup_cached = self._new_cache()
        source = self.source()
        log.info(
            "geoip database loaded: %s (%s, built %s)",
            self.path,
            source.database_type,
            source.build_date,
        )

    def source(self) -> GeoSource:
        reader = self._reader
        if reader is None:
            bundled = self._fallback.source()
            return GeoSource(
                kind=bundled.kind,
                database_type=bundled.database_type,
                build_date=bundled.build_date,
                path=self.path,
                note=f"{self.path} could not be opened; the bundled data answers",
            )
        meta = reader.metadata()
        description = meta.description.get("en") if isinstance(meta.description, dict) else None
        return GeoSource(
            kind="mmdb",
            database_type=str(meta.database_type),
            build_date=_iso_date(meta.build_epoch),
            path=self.path,
            description=description,
            ip_version=int(meta.ip_version),
        )


def open_geo(path: str | None) -> GeoLookup:
    """The lookup THRAD_GEOIP_DB asks for: the .mmdb at `path`, else the bundled countries."""
    bundled = BundledCountries()
    if not path:
        return bundled
    return MaxMindDatabase(path, bundled)


def columns_of_record(record: Any) -> GeoColumns:
    """geo_* columns from a GeoIP2-shaped record (MaxMind City/Country, DB-IP Lite).

    geo_country is the country's ISO code (the registered country's when the record has no
    country); geo_region the first subdivision's ISO code, or its English name where the
    database has no code (DB-IP Lite); geo_city the English name.
    """
    if not isinstance(record, dict):
        return NO_GEO
    country = _iso_code(record.get("country")) or _iso_code(record.get("registered_country"))
    region = None
    subdivisions = record.get("subdivisions")
    if isinstance(subdivisions, list) and subdivisions:
        first = subdivisions[0]
        region = _iso_code(first) or _english_name(first)
    city = _english_name(record.get("city"))
    lat = lon = None
    location = record.get("location")
    if isinstance(location, dict):
        lat = _number(location.get("latitude"))
        lon = _number(location.get("longitude"))
    if all(value is None for value in (country, region, city, lat, lon)):
        return NO_GEO
    return geo_columns(country, region, city, lat, lon)


def _iso_code(entry: Any) -> str | None:
    if isinstance(entry, dict):
        code = entry.get("iso_code")
        if isinstance(code, str) and code:
            return code
    return None


def _english_name(entry: Any) -> str | None:
    if isinstance(entry, dict):
        names = entry.get("names")
        if isinstance(names, dict):
            name = names.get("en")
            if isinstance(name, str) and name:
                return name
    return None


def _number(value: Any) -> float | None:
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


def _iso_date(epoch: int) -> str:
    return show_time(datetime.fromtimestamp(epoch, UTC))


def _version(distribution: str) -> str:
    try:
        return metadata.version(distribution)
    except metadata.PackageNotFoundError:
        return "unknown"


@functools.cache
def _iptocc_build_date() -> str | None:
    """When the installed iptocc wheel (and so its data) was built: its SBOM's timestamp."""
    try:
        text = metadata.distribution("iptocc").read_text("sboms/iptocc-py.cyclonedx.json")
        stamp = json.loads(text or "{}").get("metadata", {}).get("timestamp")
    except (metadata.PackageNotFoundError, OSError, ValueError, AttributeError):
        return None
    if not isinstance(stamp, str):
        return None
    try:
        return show_time(datetime.fromisoformat(stamp[:19]).replace(tzinfo=UTC))
    except ValueError:
        return None


def reload_on_sighup(geo: GeoLookup) -> None:
    """Re-open the geo database on SIGHUP (from the running event loop; a no-op elsewhere).

    With several workers uvicorn's supervisor answers SIGHUP by restarting them, which re-opens
    it too; with one, this handler keeps SIGHUP from ending the process.
    """
    import asyncio
    import signal

    def requested() -> None:
        log.info("SIGHUP: geoip database will be re-opened")
        geo.request_reload()

    # No running loop, not the main thread, or no SIGHUP on this platform: nothing to install.
    with contextlib.suppress(RuntimeError, NotImplementedError, ValueError, AttributeError):
        asyncio.get_running_loop().add_signal_handler(signal.SIGHUP, requested)
