"""`thrad-events geoip`: which geo database answers, and what it would store for an IP."""

from __future__ import annotations

import click
import msgspec

from thrad_events.cli.common import F

_json = msgspec.json.Encoder(decimal_format="number")


@click.group()
def geoip() -> None:
    """The geo database behind geo_* (THRAD_GEOIP_DB, else the bundled country data)."""


def _unused_database_option(func: F) -> F:
    # Every command takes --database-url (README, CLI); geo needs no database.
    return click.option("--database-url", envvar="THRAD_DATABASE_URL", hidden=True)(func)


def geoip_option(func: F) -> F:
    return click.option(
        "--geoip-db",
        envvar="THRAD_GEOIP_DB",
        default=None,
        help="Path to a .mmdb [env THRAD_GEOIP_DB; default: the bundled country data]",
    )(func)


@geoip.command("info")
@geoip_option
@_unused_database_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object")
def geoip_info(database_url: str | None, geoip_db: str | None, as_json: bool) -> None:
    """Which database answers geo lookups: its path, type and build date."""
    from thrad_events.enrich.geo import open_geo

    source = open_geo(geoip_db).source()
    if as_json:
        click.echo(_json.encode(source.as_dict()))
        return
    for name, value in source.as_dict().items():
        if value is not None:
            click.echo(f"{name + ':':<15} {value}")


@geoip.command("lookup")
@geoip_option
@_unused_database_option
@click.argument("ip")
@click.option("--consent", default=None, help="A consent object as JSON, as a request sends it")
def geoip_lookup(
    database_url: str | None, geoip_db: str | None, ip: str, consent: str | None
) -> None:
    """Print the ip_address and geo_* columns the server would store for IP."""
    from thrad_events.enrich.enricher import RowEnricher
    from thrad_events.enrich.geo import GEO_COLUMNS, open_geo
    from thrad_events.enrich.ip import normalize_ip
    from thrad_events.enrich.useragent import UserAgentParser

    address = normalize_ip(ip)
    if address is None:
        raise click.BadParameter(f"not an IPv4 or IPv6 address: {ip!r}", param_hint="IP")
    consent_object = None
    if consent is not None:
        try:
            consent_object = msgspec.json.decode(consent)
        except msgspec.DecodeError as exc:
            raise click.BadParameter(f"not JSON: {exc}", param_hint="--consent") from None
        if not isinstance(consent_object, dict):
            raise click.BadParameter("must be a JSON object", param_hint="--consent")
    enricher = RowEnricher(open_geo(geoip_db), UserAgentParser())
    columns = enricher(
        ip_address=address,
        sender_ip=address,
        user_agent=None,
        page_url=None,
        consent=consent_object,
    )
    click.echo(_json.encode({k: columns[k] for k in ("ip_address", *GEO_COLUMNS)}))
