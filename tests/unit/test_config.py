"""Settings from the environment: the contract's variables, defaults, and clear start-up errors.

Contract, configuration: THRAD_DATABASE_URL (default sqlite:///./var/thrad.db),
THRAD_TRUSTED_PROXIES (comma-separated CIDRs; unset: none trusted), THRAD_CLICK_SECRET, ...
each also a `serve` flag. STYLE: "A bad value stops start-up with the variable's name."
"""

from __future__ import annotations

import ipaddress

import pytest

from thrad_events.config import DEFAULT_DATABASE_URL, ConfigError, Settings


def test_defaults_match_the_contract() -> None:
    """Contract: default store sqlite:///./var/thrad.db, serving on 127.0.0.1:8080, 1 worker."""
    settings = Settings.from_env({})
    assert settings.database_url == DEFAULT_DATABASE_URL == "sqlite:///./var/thrad.db"
    assert (settings.host, settings.port, settings.workers) == ("127.0.0.1", 8080, 1)
    assert settings.trusted_proxies == ()
    assert settings.redis_url is None
    assert settings.click_secret is None
    assert settings.admin_token is None


def test_body_limit_is_one_mebibyte() -> None:
    """The 413 limit: a body over 1 MiB is payload_too_large."""
    assert Settings.from_env({}).max_body_bytes == 1024 * 1024


def test_revocation_cache_is_well_under_five_seconds() -> None:
    """Contract: revoking a key takes effect within 5 seconds on every process."""
    assert Settings.from_env({}).key_cache_ttl_s < 5


def test_every_contract_variable_is_read() -> None:
    """Contract: THRAD_DATABASE_URL, THRAD_REDIS_URL, THRAD_GEOIP_DB, THRAD_TRUSTED_PROXIES,
    THRAD_CLICK_SECRET, THRAD_ADMIN_TOKEN."""
    settings = Settings.from_env(
        {
            "THRAD_DATABASE_URL": "sqlite:////tmp/x.db",
            "THRAD_REDIS_URL": "redis://localhost:6379/0",
            "THRAD_GEOIP_DB": "/data/GeoLite2-City.mmdb",
            "THRAD_TRUSTED_PROXIES": "10.0.0.0/8, 2001:db8::/32",
            "THRAD_CLICK_SECRET": "a-click-secret-of-some-length",
            "THRAD_ADMIN_TOKEN": "an-admin-token-of-some-length",
        }
    )
    assert settings.database_url == "sqlite:////tmp/x.db"
    assert settings.redis_url == "redis://localhost:6379/0"
    assert settings.geoip_db == "/data/GeoLite2-City.mmdb"
    assert settings.trusted_proxies == (
        ipaddress.ip_network("10.0.0.0/8"),
        ipaddress.ip_network("2001:db8::/32"),
    )
    assert settings.click_secret == "a-click-secret-of-some-length"
    assert settings.admin_token == "an-admin-token-of-some-length"


def test_postgres_urls_are_accepted() -> None:
    """Contract: THRAD_DATABASE_URL is sqlite:///path or postgresql://..."""
    url = "postgresql://thrad:pw@db:5432/thrad"
    assert Settings.from_env({"THRAD_DATABASE_URL": url}).database_url == url


def test_flags_override_the_environment() -> None:
    """Contract: each variable is also a `serve` flag; the flag wins."""
    settings = Settings.from_env(
        {"THRAD_DATABASE_URL": "sqlite:///env.db"},
        database_url="sqlite:///flag.db",
        port=9000,
    )
    assert settings.database_url == "sqlite:///flag.db"
    assert settings.port == 9000


def test_an_unset_flag_does_not_override() -> None:
    """A flag not given (None) leaves the environment's value."""
    settings = Settings.from_env({"THRAD_DATABASE_URL": "sqlite:///env.db"}, database_url=None)
    assert settings.database_url == "sqlite:///env.db"


def test_empty_variables_mean_unset() -> None:
    """An exported-but-empty variable is the default, not an error."""
    settings = Settings.from_env({"THRAD_DATABASE_URL": "", "THRAD_TRUSTED_PROXIES": ""})
    assert settings.database_url == DEFAULT_DATABASE_URL
    assert settings.trusted_proxies == ()


def test_a_single_address_is_a_trusted_network() -> None:
    """A proxy given as a bare address is trusted as a /32."""
    [network] = Settings.from_env({"THRAD_TRUSTED_PROXIES": "192.0.2.10"}).trusted_proxies
    assert network == ipaddress.ip_network("192.0.2.10/32")


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"THRAD_DATABASE_URL": "mysql://x"}, "THRAD_DATABASE_URL"),
        ({"THRAD_TRUSTED_PROXIES": "10.0.0.0/8, not-a-cidr"}, "THRAD_TRUSTED_PROXIES"),
        ({"THRAD_CLICK_SECRET": "short"}, "THRAD_CLICK_SECRET"),
        ({"THRAD_ADMIN_TOKEN": "fifteen-chars-x"}, "THRAD_ADMIN_TOKEN"),
        ({"THRAD_ADMIN_TOKEN": "an-admin-token-0123456789\n"}, "THRAD_ADMIN_TOKEN"),
        ({"THRAD_ADMIN_TOKEN": "an admin token with spaces"}, "THRAD_ADMIN_TOKEN"),
        ({"THRAD_ADMIN_TOKEN": "ein-schlüssel-für-admins-0123"}, "THRAD_ADMIN_TOKEN"),
        ({"THRAD_MAX_BODY_BYTES": "lots"}, "THRAD_MAX_BODY_BYTES"),
        ({"THRAD_RATE_LIMIT_PER_S": "0"}, "THRAD_RATE_LIMIT_PER_S"),
        ({"THRAD_LOG_LEVEL": "chatty"}, "THRAD_LOG_LEVEL"),
        ({"THRAD_ACCESS_LOG": "maybe"}, "THRAD_ACCESS_LOG"),
        ({"THRAD_HEADER_TIMEOUT_S": "0"}, "THRAD_HEADER_TIMEOUT_S"),
        ({"THRAD_KEEPALIVE_TIMEOUT_S": "soon"}, "THRAD_KEEPALIVE_TIMEOUT_S"),
        ({"THRAD_MAX_CONNECTIONS": "-1"}, "THRAD_MAX_CONNECTIONS"),
        ({"THRAD_REPORT_TIMEOUT_S": "0"}, "THRAD_REPORT_TIMEOUT_S"),
        # Below one full batch of rows, full batches could never be queued.
        ({"THRAD_WRITE_QUEUE_MAX_ROWS": "499"}, "THRAD_WRITE_QUEUE_MAX_ROWS"),
        ({"THRAD_REJECTIONS_RETENTION_DAYS": "0"}, "THRAD_REJECTIONS_RETENTION_DAYS"),
        ({"THRAD_REJECTIONS_RETENTION_DAYS": "3651"}, "THRAD_REJECTIONS_RETENTION_DAYS"),
        ({"THRAD_TEST_RETENTION_DAYS": "0"}, "THRAD_TEST_RETENTION_DAYS"),
        ({"THRAD_TAG_RATE_LIMIT_PER_S": "0"}, "THRAD_TAG_RATE_LIMIT_PER_S"),
        ({"THRAD_TAG_IP_RATE_LIMIT_PER_S": "many"}, "THRAD_TAG_IP_RATE_LIMIT_PER_S"),
        ({"THRAD_TAG_MAX_BODY_BYTES": "-5"}, "THRAD_TAG_MAX_BODY_BYTES"),
        ({"THRAD_EXPORT_SETTLE_S": "-1"}, "THRAD_EXPORT_SETTLE_S"),
        ({"THRAD_EXPORT_SETTLE_S": "1.5"}, "THRAD_EXPORT_SETTLE_S"),
    ],
)
def test_a_bad_value_stops_start_up_naming_the_variable(env: dict[str, str], name: str) -> None:
    """STYLE: a bad value stops start-up with the variable's name."""
    with pytest.raises(ConfigError, match=name):
        Settings.from_env(env)


def test_the_http_edge_limits_are_read() -> None:
    settings = Settings.from_env(
        {
            "THRAD_HEADER_TIMEOUT_S": "3",
            "THRAD_KEEPALIVE_TIMEOUT_S": "7",
            "THRAD_MAX_CONNECTIONS": "100",
        }
    )
    assert (settings.header_timeout_s, settings.keepalive_timeout_s) == (3.0, 7)
    assert settings.max_connections == 100
    defaults = Settings()
    assert (defaults.header_timeout_s, defaults.keepalive_timeout_s) == (5.0, 5)


@pytest.mark.parametrize(("field", "value"), [("port", 0), ("port", 70000), ("workers", 0)])
def test_a_bad_flag_stops_start_up(field: str, value: int) -> None:
    """serve --port/--workers out of range is refused before anything starts."""
    with pytest.raises(ConfigError, match=field):
        Settings.from_env({}, **{field: value})


@pytest.mark.parametrize(("raw", "level"), [("warning", "WARNING"), (" Debug ", "DEBUG")])
def test_log_level_is_read_in_any_case(raw: str, level: str) -> None:
    assert Settings.from_env({"THRAD_LOG_LEVEL": raw}).log_level == level


def test_reports_have_30_s_unless_thrad_report_timeout_s_says_otherwise() -> None:
    """README: a report that runs longer than 30 s is stopped with a 503."""
    assert Settings.from_env({}).report_timeout_s == 30
    assert Settings.from_env({"THRAD_REPORT_TIMEOUT_S": "5"}).report_timeout_s == 5


def test_settings_are_frozen() -> None:
    """STYLE: one frozen settings object, handed down."""
    settings = Settings.from_env({})
    with pytest.raises(AttributeError):
        settings.port = 1  # type: ignore[misc]


def test_a_write_queue_of_one_full_batch_is_accepted() -> None:
    assert Settings.from_env({"THRAD_WRITE_QUEUE_MAX_ROWS": "500"}).write_queue_max_rows == 500


def test_rejections_are_kept_seven_days_unless_configured() -> None:
    assert Settings().rejections_retention_days == 7
    custom = Settings.from_env({"THRAD_REJECTIONS_RETENTION_DAYS": "30"})
    assert custom.rejections_retention_days == 30


def test_the_debugger_heartbeat_is_read_and_checked() -> None:
    assert Settings.from_env({"THRAD_DEBUG_HEARTBEAT_S": "2"}).debug_heartbeat_s == 2.0
    with pytest.raises(ConfigError, match="THRAD_DEBUG_HEARTBEAT_S"):
        Settings.from_env({"THRAD_DEBUG_HEARTBEAT_S": "0"})


def test_the_wave_two_variables_are_read() -> None:
    """README: the Tag's limits, the test rows' retention and the export's settle time; an
    export may settle for no time at all, every other of these is at least one."""
    defaults = Settings.from_env({})
    assert (defaults.test_retention_days, defaults.export_settle_s) == (7, 10)
    assert (defaults.tag_rate_limit_per_s, defaults.tag_ip_rate_limit_per_s) == (1000, 50)
    assert defaults.tag_max_body_bytes == 65536
    settings = Settings.from_env(
        {
            "THRAD_TEST_RETENTION_DAYS": "1",
            "THRAD_EXPORT_SETTLE_S": "0",
            "THRAD_TAG_RATE_LIMIT_PER_S": "20",
            "THRAD_TAG_IP_RATE_LIMIT_PER_S": "2",
            "THRAD_TAG_MAX_BODY_BYTES": "1024",
        }
    )
    assert (settings.test_retention_days, settings.export_settle_s) == (1, 0)
    assert (settings.tag_rate_limit_per_s, settings.tag_ip_rate_limit_per_s) == (20, 2)
    assert settings.tag_max_body_bytes == 1024
