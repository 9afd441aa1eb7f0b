"""One frozen Settings object, read once from the environment and CLI flags, handed down."""

from __future__ import annotations

import ipaddress
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from thrad_events.schemas import MAX_BATCH_ITEMS

DEFAULT_DATABASE_URL = "sqlite:///./var/thrad.db"
LOG_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR")
# What an `Authorization: Bearer` header carries as it is: visible ASCII, no space.
_BEARER_TOKEN = re.compile(r"[\x21-\x7e]+")
# Group-commit defaults, shared by the settings and both stores: rows per transaction at most,
# rows that may wait before requests get 503, and how long a request waits for its commit.
WRITE_BATCH_MAX_ROWS = 512
WRITE_QUEUE_MAX_ROWS = 20_000
WRITE_TIMEOUT_S = 1.0
# A report still running after this long is answered 503 (and the work stopped).
REPORT_TIMEOUT_S = 30
# Rejections are kept at most ten years.
MAX_RETENTION_DAYS = 3650


class ConfigError(ValueError):
    """A configuration value is unusable; the message names the variable."""


IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@dataclass(frozen=True, slots=True)
class Settings:
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    geoip_db: str | None = None
    trusted_proxies: tuple[IPNetwork, ...] = ()
    click_secret: str | None = None
    admin_token: str | None = None
    host: str = "127.0.0.1"
    port: int = 8080
    workers: int = 1
    max_body_bytes: int = 1024 * 1024
    # A body must arrive within this time (slow-client protection).
    body_timeout_s: float = 10.0
    # A request head must arrive whole within this time of the connection opening or of the
    # previous response (slowloris protection).
    header_timeout_s: float = 5.0
    # An idle connection (also a fresh one that sends nothing) is closed after this time
    # (whole seconds: uvicorn's timeout_keep_alive).
    keepalive_timeout_s: int = 5
    # Open connections per worker process; past it, requests are answered 503 and closed.
    max_connections: int = 4096
    # Group commit: at most this many rows per transaction; the queue is bounded for backpressure.
    write_batch_max_rows: int = WRITE_BATCH_MAX_ROWS
    write_queue_max_rows: int = WRITE_QUEUE_MAX_ROWS
    # A request waits at most this long for its commit before it is answered 503.
    write_timeout_s: float = WRITE_TIMEOUT_S
    # Set (by `serve --workers N`) when several worker processes share their metrics.
    metrics_dir: str | None = None
    # Requests per second per key when the key has no limit of its own.
    rate_limit_per_s: int = 1000
    # How long an API key lookup is trusted before it is read again (revocation latency bound).
    key_cache_ttl_s: float = 2.0
    # The browser Tag's endpoints (public, no key): requests per second per tag and per client
    # IP, and their body cap (a page's beacon is small; sendBeacon itself stops at 64 KiB).
    tag_rate_limit_per_s: int = 1000
    tag_ip_rate_limit_per_s: int = 50
    tag_max_body_bytes: int = 64 * 1024
    # How long a click stays valid for the browser Tag's signed conversions (thrad_exp).
    click_ttl_s: int = 30 * 24 * 3600
    # Everything a report does (SQL, summing, encoding), waiting for a report thread included.
    report_timeout_s: float = REPORT_TIMEOUT_S
    # An HTTP export's window ends this long before now: rows are stamped before their commit,
    # so the newest seconds may still gain rows that a page would otherwise have passed.
    export_settle_s: int = 10
    # Refused requests (rejections) are kept this many days, then deleted by the server.
    rejections_retention_days: int = 7
    # Seconds between the event debugger stream's heartbeat comments (proxies close idle ones).
    debug_heartbeat_s: float = 15.0
    log_level: str = "INFO"
    # One line per request through uvicorn's access log (THRAD_ACCESS_LOG=1); off by default.
    access_log: bool = False
    # Rows sent with test keys (and test clicks) are deleted once older than this.
    test_retention_days: int = 7

    @classmethod
    def from_env(cls, env: Mapping[str, str], **overrides: Any) -> Settings:
        """Build settings from THRAD_* variables; explicit overrides (CLI flags) win."""
        values: dict[str, Any] = {}
        if url := env.get("THRAD_DATABASE_URL"):
            values["database_url"] = url
        if url := env.get("THRAD_REDIS_URL"):
            values["redis_url"] = url
        if path := env.get("THRAD_GEOIP_DB"):
            values["geoip_db"] = path
        if proxies := env.get("THRAD_TRUSTED_PROXIES"):
            values["trusted_proxies"] = parse_networks(proxies, "THRAD_TRUSTED_PROXIES")
        if secret := env.get("THRAD_CLICK_SECRET"):
            if len(secret) < 16:
                raise ConfigError("THRAD_CLICK_SECRET must be at least 16 characters")
            values["click_secret"] = secret
        if path := env.get("PROMETHEUS_MULTIPROC_DIR"):
            values["metrics_dir"] = path
        if token := env.get("THRAD_ADMIN_TOKEN"):
            if len(token) < 16:
                # A short bearer token could be guessed over HTTP: refuse to serve with it.
                raise ConfigError("THRAD_ADMIN_TOKEN must be at least 16 characters")
            if not _BEARER_TOKEN.fullmatch(token):
                # No request could present it (a header's whitespace is stripped, a space ends
                # the token, header bytes are not UTF-8): every admin request would be a 401.
                raise ConfigError(
                    "THRAD_ADMIN_TOKEN must be printable ASCII without spaces or line breaks "
                    "(it is sent as `Authorization: Bearer <token>`)"
                )
            values["admin_token"] = token
        for name, key in (
            ("THRAD_MAX_BODY_BYTES", "max_body_bytes"),
            ("THRAD_WRITE_QUEUE_MAX_ROWS", "write_queue_max_rows"),
            ("THRAD_RATE_LIMIT_PER_S", "rate_limit_per_s"),
            ("THRAD_MAX_CONNECTIONS", "max_connections"),
            ("THRAD_KEEPALIVE_TIMEOUT_S", "keepalive_timeout_s"),
            ("THRAD_TEST_RETENTION_DAYS", "test_retention_days"),
            ("THRAD_TAG_RATE_LIMIT_PER_S", "tag_rate_limit_per_s"),
            ("THRAD_TAG_IP_RATE_LIMIT_PER_S", "tag_ip_rate_limit_per_s"),
            ("THRAD_TAG_MAX_BODY_BYTES", "tag_max_body_bytes"),
            ("THRAD_REJECTIONS_RETENTION_DAYS", "rejections_retention_days"),
        ):
            if raw := env.get(name):
                values[key] = parse_positive_int(raw, name)
        if raw := env.get("THRAD_LOG_LEVEL"):
            values["log_level"] = parse_log_level(raw)
        if raw := env.get("THRAD_ACCESS_LOG"):
            values["access_log"] = parse_flag(raw, "THRAD_ACCESS_LOG")
        for name, key in (
            ("THRAD_BODY_TIMEOUT_S", "body_timeout_s"),
            ("THRAD_HEADER_TIMEOUT_S", "header_timeout_s"),
            ("THRAD_REPORT_TIMEOUT_S", "report_timeout_s"),
            ("THRAD_DEBUG_HEARTBEAT_S", "debug_heartbeat_s"),
        ):
            if raw := env.get(name):
                values[key] = float(parse_positive_int(raw, name))
        if raw := env.get("THRAD_EXPORT_SETTLE_S"):
            values["export_settle_s"] = parse_non_negative_int(raw, "THRAD_EXPORT_SETTLE_S")
        values.update({k: v for k, v in overrides.items() if v is not None})
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if not (
            self.database_url.startswith("sqlite:///")
            or self.database_url.startswith(("postgresql://", "postgres://"))
        ):
            raise ConfigError(
                "THRAD_DATABASE_URL must start with sqlite:/// or postgresql:// "
                f"(got {self.database_url!r})"
            )
        if not 0 < self.port < 65536:
            raise ConfigError(f"port must be 1-65535 (got {self.port})")
        if self.workers < 1:
            raise ConfigError(f"workers must be at least 1 (got {self.workers})")
        if not 1 <= self.rejections_retention_days <= MAX_RETENTION_DAYS:
            raise ConfigError(
                f"THRAD_REJECTIONS_RETENTION_DAYS must be 1 to {MAX_RETENTION_DAYS} "
                f"(got {self.rejections_retention_days})"
            )
        if self.write_queue_max_rows < MAX_BATCH_ITEMS:
            # A batch waits whole or not at all: a smaller queue would refuse full batches forever.
            raise ConfigError(
                f"THRAD_WRITE_QUEUE_MAX_ROWS must be at least {MAX_BATCH_ITEMS}, the rows of one "
                f"full batch (got {self.write_queue_max_rows})"
            )


def parse_networks(raw: str, name: str) -> tuple[IPNetwork, ...]:
    networks = []
    for part in raw.split(","):
        part = part.strip()
        if not part:
            continue
        try:
            networks.append(ipaddress.ip_network(part, strict=False))
        except ValueError as exc:
            raise ConfigError(f"{name}: {part!r} is not a CIDR ({exc})") from None
    return tuple(networks)


def parse_flag(raw: str, name: str) -> bool:
    value = raw.strip().lower()
    if value in ("1", "true", "yes", "on"):
        return True
    if value in ("0", "false", "no", "off"):
        return False
    raise ConfigError(f"{name} must be 1 or 0 (got {raw!r})")


def parse_log_level(raw: str) -> str:
    level = raw.strip().upper()
    if level not in LOG_LEVELS:
        raise ConfigError(f"THRAD_LOG_LEVEL must be one of {', '.join(LOG_LEVELS)} (got {raw!r})")
    return level


def parse_positive_int(raw: str, name: str) -> int:
    return _parse_int(raw, name, least=1)


def parse_non_negative_int(raw: str, name: str) -> int:
    return _parse_int(raw, name, least=0)


def _parse_int(raw: str, name: str, *, least: int) -> int:
    try:
        value = int(raw)
    except ValueError:
        raise ConfigError(f"{name} must be an integer (got {raw!r})") from None
    if value < least:
        bound = "positive" if least == 1 else f"{least} or more"
        raise ConfigError(f"{name} must be {bound} (got {value})")
    return value
