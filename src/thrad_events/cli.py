"""The `thrad-events` command: serve, migrate, keys, clicks and export. Thin over the library."""

from __future__ import annotations

import asyncio
import functools
import os
import signal
import sys
import tempfile
from collections.abc import Callable, Iterator, Sequence
from datetime import UTC, datetime
from typing import Any, TypeVar, cast

import click
import msgspec

from thrad_events.auth import admin
from thrad_events.config import ConfigError, Settings
from thrad_events.errors import IngestError
from thrad_events.instants import show_time, utcnow
from thrad_events.reports.query import Report
from thrad_events.reports.safe_text import terminal_text
from thrad_events.store import missing_sqlite_file, open_store
from thrad_events.store.base import Store
from thrad_events.store.errors import StorageError

F = TypeVar("F", bound=Callable[..., Any])
T = TypeVar("T")
_json = msgspec.json.Encoder(decimal_format="number")


def database_option(func: F) -> F:
    return click.option(
        "--database-url",
        envvar="THRAD_DATABASE_URL",
        default=None,
        help="sqlite:///path or postgresql://... [env THRAD_DATABASE_URL]",
    )(func)


def _settings(**overrides: Any) -> Settings:
    try:
        return Settings.from_env(os.environ, **overrides)
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None


def _store(database_url: str | None, *, create: bool = False) -> Store:
    """The configured store, migrated, closed when the command ends; without `create`, a
    missing SQLite file is an error."""
    settings = _settings(database_url=database_url)
    missing = None if create else missing_sqlite_file(settings.database_url)
    if missing is not None:
        raise click.ClickException(
            f"no database at {missing} (THRAD_DATABASE_URL={settings.database_url}); "
            "`thrad-events migrate` or `serve` creates it"
        )
    try:
        store = open_store(settings.database_url)
        click.get_current_context().call_on_close(store.close_sync)
        store.migrate()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except StorageError as exc:
        raise click.ClickException(f"THRAD_DATABASE_URL: {exc}") from None
    return store


def _parse_time(value: str | None, option: str) -> datetime | None:
    if value is None:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise click.BadParameter(f"not an ISO-8601 time: {value!r}", param_hint=option) from None
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def acting(action: Callable[[], T]) -> T:
    """Run an operator action; its refusal (unknown key, conflict, bad value) is one line."""
    try:
        return action()
    except IngestError as exc:
        raise click.ClickException(exc.message) from None


def write_table(header: Sequence[str], rows: Sequence[Sequence[str]]) -> None:
    """A header row and columns padded to their widest cell, every cell terminal-safe."""
    table = [list(header), *([terminal_text(cell) for cell in row] for row in rows)]
    widths = [max(len(row[i]) for row in table) for i in range(len(header))]
    for row in table:
        click.echo(
            "  ".join(cell.ljust(width) for cell, width in zip(row, widths, strict=True)).rstrip()
        )


def _check_redis(url: str) -> None:
    import redis

    try:
        redis.Redis.from_url(url, socket_connect_timeout=3, socket_timeout=3).ping()
    except (redis.RedisError, ValueError) as exc:
        raise click.ClickException(f"THRAD_REDIS_URL: Redis is not reachable ({exc})") from None


@click.group()
def main() -> None:
    """Thrad's server-to-server Events API."""


@main.command()
@database_option
@click.option("--host", default=None, help="Interface to listen on [default 127.0.0.1]")
@click.option("--port", type=int, default=None, help="Port to listen on [default 8080]")
@click.option("--workers", type=int, default=None, help="Worker processes [default 1]")
def serve(
    database_url: str | None, host: str | None, port: int | None, workers: int | None
) -> None:
    """Migrate the database, then serve the API."""
    import uvicorn

    from thrad_events.app import click_secret
    from thrad_events.http.protocol import JsonErrorHttpToolsProtocol
    from thrad_events.logs import configure_logging

    settings = _settings(database_url=database_url, host=host, port=port, workers=workers)
    configure_logging(settings.log_level, access_log=settings.access_log)
    if settings.redis_url:
        _check_redis(settings.redis_url)
    store = _store(settings.database_url, create=True)
    click_secret(settings, store)
    first_key = admin.create_first_key(store)
    if first_key is not None:
        click.echo(
            "First start: created partner 'dev' and this API key. It is shown only once:\n"
            f"  {first_key.api_key}"
        )
    store.close_sync()
    # Workers build their own app from the environment, so the flags travel through it.
    os.environ["THRAD_DATABASE_URL"] = settings.database_url
    # uvicorn re-raises the signal that stopped it once it has drained; a drained SIGTERM is a
    # clean stop, so it exits 0.
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    metrics_dir = None
    if settings.workers > 1 and "PROMETHEUS_MULTIPROC_DIR" not in os.environ:
        # Workers are fresh interpreters: they see this before importing prometheus_client.
        metrics_dir = tempfile.TemporaryDirectory(prefix="thrad-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = metrics_dir.name
    uvicorn.run(
        "thrad_events.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=settings.workers,
        loop="uvloop",
        # httptools with our head limits, header timeout and connection cap, answering every
        # refusal with the JSON error body (a partial: uvicorn only calls it, in every worker).
        http=cast(
            "type[asyncio.Protocol]",
            functools.partial(
                JsonErrorHttpToolsProtocol,
                header_timeout_s=settings.header_timeout_s,
                max_connections=settings.max_connections,
            ),
        ),
        access_log=settings.access_log,
        # uvicorn would believe X-Forwarded-For from 127.0.0.1 by default and rewrite the peer;
        # only THRAD_TRUSTED_PROXIES decides that (enrich/ip.py), unset meaning none trusted.
        proxy_headers=False,
        log_config=None,
        timeout_keep_alive=settings.keepalive_timeout_s,
        # The protocol caps connections itself (THRAD_MAX_CONNECTIONS), answering in JSON.
        limit_concurrency=None,
        timeout_graceful_shutdown=30,
    )
    if metrics_dir is not None:
        metrics_dir.cleanup()


@main.command()
@database_option
def migrate(database_url: str | None) -> None:
    """Apply pending schema migrations."""
    try:
        store = open_store(_settings(database_url=database_url).database_url)
        click.get_current_context().call_on_close(store.close_sync)
        applied = store.migrate()
    except ConfigError as exc:
        raise click.ClickException(str(exc)) from None
    except StorageError as exc:
        raise click.ClickException(f"THRAD_DATABASE_URL: {exc}") from None
    click.echo(f"applied migrations: {applied}" if applied else "database is up to date")


@main.group()
def keys() -> None:
    """Create, list and revoke API keys."""


@keys.command("create")
@database_option
@click.option("--partner", required=True, help="Partner name; created if new")
@click.option("--label", required=True, help="Label stamped into params.api_key_label")
@click.option("--expires-at", default=None, help="ISO-8601 time after which the key is refused")
@click.option("--rate-limit", type=click.IntRange(min=1), default=None, help="Requests per second")
@click.option("--test", is_flag=True, help="A test key (thr_test_...): its rows are test rows")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object")
def keys_create(
    database_url: str | None,
    partner: str,
    label: str,
    expires_at: str | None,
    rate_limit: int | None,
    test: bool,
    as_json: bool,
) -> None:
    """Create an API key; the secret is printed here once and never stored in clear."""
    expires = _parse_time(expires_at, "--expires-at")
    if expires is not None and expires <= utcnow():
        raise click.BadParameter(
            f"{expires_at} is already past: the key would be refused at once",
            param_hint="--expires-at",
        )
    store = _store(database_url)
    made = acting(
        lambda: admin.create_key(
            store,
            admin.CLI_ACTOR,
            partner=partner,
            label=label,
            expires_at=expires,
            rate_limit=rate_limit,
            test=test,
            create_partner=True,
        )
    )
    key = made.record
    expires_text = show_time(expires) if expires else None
    if as_json:
        click.echo(
            _json.encode(
                {
                    "key_id": key.key_id,
                    "api_key": made.api_key,
                    "partner_id": key.partner_id,
                    "label": key.label,
                    "expires_at": expires_text,
                    # Only a test key says so: a live key's output keeps its five fields.
                    **({"test": True} if key.test else {}),
                }
            )
        )
        return
    click.echo(f"key_id:     {key.key_id}")
    click.echo(f"partner_id: {key.partner_id}")
    click.echo(f"label:      {key.label}")
    click.echo(f"expires_at: {expires_text or 'never'}")
    if key.test:
        click.echo("test:       yes (rows kept apart from live ones, deleted after the retention)")
    click.echo(f"api_key:    {made.api_key}   (shown only now)")


@keys.command("list")
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line")
def keys_list(database_url: str | None, as_json: bool) -> None:
    """List API keys (never their secrets), with a header row and each key's status."""
    now = utcnow()
    table: list[tuple[str, ...]] = []
    for record in _store(database_url).list_keys():
        entry = {
            "key_id": record.key_id,
            "partner_id": record.partner_id,
            "partner": record.partner_name,
            "label": record.label,
            "key_prefix": record.key_prefix,
            "status": record.status(now),
            "created_at": record.created_at,
            "expires_at": record.expires_at,
            "revoked_at": record.revoked_at,
            "last_used_at": record.last_used_at,
            "rate_limit": record.rate_limit,
            "test": record.test,
        }
        if as_json:
            click.echo(_json.encode(entry))
            continue
        table.append(
            (
                record.key_id,
                record.partner_name,
                record.label,
                f"{record.key_prefix}…",
                record.status(now),
                record.expires_at or "never",
                str(record.rate_limit or "default"),
                record.last_used_at or "never",
                "yes" if record.test else "no",
            )
        )
    if not as_json:
        write_table(_KEY_COLUMNS, table)


_KEY_COLUMNS = (
    "KEY_ID",
    "PARTNER",
    "LABEL",
    "PREFIX",
    "STATUS",
    "EXPIRES_AT",
    "RATE_LIMIT",
    "LAST_USED_AT",
    "TEST",
)


@keys.command("revoke")
@database_option
@click.argument("key_id")
def keys_revoke(database_url: str | None, key_id: str) -> None:
    """Revoke a key; every server process refuses it within 5 seconds."""
    store = _store(database_url)
    acting(lambda: admin.revoke_key(store, admin.CLI_ACTOR, key_id))
    click.echo(f"revoked {key_id}")


@keys.command("update")
@database_option
@click.argument("key_id")
@click.option(
    "--rate-limit",
    type=click.IntRange(min=0),
    required=True,
    help="Requests per second; 0 = default",
)
def keys_update(database_url: str | None, key_id: str, rate_limit: int) -> None:
    """Change a key's rate limit; every server process applies it within 5 seconds."""
    store = _store(database_url)
    changes = {"rate_limit": rate_limit or None}
    acting(lambda: admin.update_key(store, admin.CLI_ACTOR, key_id, changes))
    click.echo(f"{key_id}: rate limit {rate_limit or 'server default'}")


@main.group()
def clicks() -> None:
    """Signed click links."""


@clicks.command("link")
@database_option
@click.option("--landing-url", required=True, help="Advertiser landing page (http or https)")
@click.option("--tag-id", default=None)
@click.option("--campaign-id", default=None)
@click.option("--ad-id", default=None)
@click.option("--bid-id", default=None)
@click.option("--impression-id", default=None)
@click.option("--base-url", default="http://127.0.0.1:8080", help="Where this service is reached")
def clicks_link(
    database_url: str | None,
    landing_url: str,
    tag_id: str | None,
    campaign_id: str | None,
    ad_id: str | None,
    bid_id: str | None,
    impression_id: str | None,
    base_url: str,
) -> None:
    """Print a click link signed with the server's click secret."""
    from thrad_events.app import click_secret
    from thrad_events.errors import BadClickLink
    from thrad_events.ingest.clicklinks import ClickLink, sign_link

    settings = _settings(database_url=database_url)
    secret = click_secret(settings, _store(settings.database_url))
    link = ClickLink(landing_url, tag_id, campaign_id, ad_id, bid_id, impression_id)
    try:
        click.echo(sign_link(link, secret, base_url))
    except BadClickLink as exc:
        raise click.BadParameter(exc.message, param_hint="--landing-url") from None


@clicks.command("create")
@database_option
@click.option("--campaign-id", default=None)
@click.option("--ad-id", default=None)
@click.option("--bid-id", default=None)
@click.option("--test", is_flag=True, help="A test click (kept out of reports, deleted later)")
@click.option("--json", "as_json", is_flag=True, help="Print click_id, thrad_exp and thrad_sig")
def clicks_create(
    database_url: str | None,
    campaign_id: str | None,
    ad_id: str | None,
    bid_id: str | None,
    test: bool,
    as_json: bool,
) -> None:
    """Store a click, as following a click link would, and print its click_id."""
    from thrad_events.app import click_secret
    from thrad_events.enrich.ip import TrustedProxies
    from thrad_events.errors import IngestError
    from thrad_events.ingest.pipeline import Ingestor, MintedClick, RequestContext

    for value, option in ((campaign_id, "--campaign-id"), (ad_id, "--ad-id"), (bid_id, "--bid-id")):
        if value is not None and not 1 <= len(value) <= 256:
            raise click.BadParameter("must be 1 to 256 characters", param_hint=option)
    settings = _settings(database_url=database_url)
    store = _store(settings.database_url)
    ingestor = Ingestor(
        store,
        proxies=TrustedProxies(()),
        click_secret=click_secret(settings, store),
        click_ttl_s=settings.click_ttl_s,
    )

    async def create() -> MintedClick:
        # Through the group-commit writer, as the server stores clicks.
        await store.start()
        try:
            return await ingestor.create_click(
                RequestContext(peer_ip=None),
                campaign_id=campaign_id,
                ad_id=ad_id,
                bid_id=bid_id,
                test=test,
            )
        finally:
            await store.close()

    try:
        minted = asyncio.run(create())
    except (IngestError, StorageError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close_sync()
    if as_json:
        click.echo(
            _json.encode(
                {
                    "click_id": minted.click_id,
                    "thrad_exp": minted.thrad_exp,
                    "thrad_sig": minted.thrad_sig,
                }
            )
        )
        return
    click.echo(minted.click_id)


@main.command()
@database_option
@click.argument("table", type=click.Choice(["events", "conversions", "clicks"]))
@click.option("--format", "fmt", type=click.Choice(["jsonl", "csv"]), default="jsonl")
@click.option("--since", default=None, help="Only rows received at or after this ISO-8601 time")
@click.option("--until", default=None, help="Only rows received before this ISO-8601 time")
@click.option("--partner", default=None, help="Only this partner's rows (name or id)")
@click.option("--limit", type=click.IntRange(min=1), default=None, help="At most this many rows")
@click.option("--include-test", is_flag=True, help="Also rows sent with test keys (test: true)")
def export(
    database_url: str | None,
    table: str,
    fmt: str,
    since: str | None,
    until: str | None,
    partner: str | None,
    limit: int | None,
    include_test: bool,
) -> None:
    """Write stored rows to stdout, oldest first, streamed."""
    from thrad_events.reports.export import write_csv, write_jsonl

    store = _store(database_url)
    if partner is not None and table == "clicks":
        raise click.BadParameter("clicks belong to no partner", param_hint="--partner")
    rows: Iterator[dict[str, Any]] = store.export_rows(
        table,
        _parse_time(since, "--since"),
        _parse_time(until, "--until"),
        partner_id=_partner_id(store, partner) if partner is not None else None,
        limit=limit,
        include_test=include_test,
    )
    writer = write_jsonl if fmt == "jsonl" else write_csv
    writer(table, rows, sys.stdout)


@main.command()
@database_option
@click.argument(
    "report_name",
    metavar="events|conversions|funnel|delivery",
    type=click.Choice([*(report.value for report in Report), "delivery"]),
)
@click.option("--since", default=None, help="ISO-8601, inclusive [default: 7 days before --until]")
@click.option("--until", default=None, help="ISO-8601, exclusive [default: now]")
@click.option(
    "--time-basis",
    default=None,
    metavar="event|received",
    help="The time --since, --until, day and hour are on: the event's own time (an event's "
    "timestamp, a conversion's conversion_time) or when it was received [default: event]",
)
@click.option(
    "--group-by",
    multiple=True,
    help="Field to group by, repeatable or comma-separated: day, hour, event_name, tag_id, "
    "params.KEY, ... (the error lists each report's fields)",
)
@click.option("--filter", "filters", multiple=True, help="FIELD:VALUE, repeatable")
@click.option("--names", default=None, metavar="standard|custom", help="Standard or custom names")
@click.option("--limit", type=int, default=None, help="Most groups shown [default 1000]")
@click.option("--partner", default=None, help="Partner name or id [default: every partner]")
@click.option("--include-test", is_flag=True, help="Also count rows sent with test keys")
@click.option("--json", "as_json", is_flag=True, help="The HTTP endpoint's JSON")
@click.option("--csv", "as_csv", is_flag=True, help="CSV, nested values in columns of their own")
def report(
    database_url: str | None,
    report_name: str,
    since: str | None,
    until: str | None,
    time_basis: str | None,
    group_by: tuple[str, ...],
    filters: tuple[str, ...],
    names: str | None,
    limit: int | None,
    partner: str | None,
    include_test: bool,
    as_json: bool,
    as_csv: bool,
) -> None:
    """Events, conversions and revenue, or the click funnel: as GET /v1/api/reports/..."""
    from thrad_events.deadline import Deadline, ReportTimedOut
    from thrad_events.errors import IngestError
    from thrad_events.reports import render
    from thrad_events.reports.query import parse_report_query
    from thrad_events.reports.run import answer

    if as_json and as_csv:
        raise click.UsageError("--json and --csv exclude each other")
    if report_name == "delivery":
        if time_basis or filters or limit:
            raise click.UsageError("the delivery report takes no --time-basis, --filter, --limit")
        from thrad_events.cli_delivery import delivery_report

        delivery_report(database_url, since, until, group_by, partner, as_json, as_csv)
        return
    # The same (name, value) pairs a query string gives the HTTP endpoint.
    items = [("group_by", field) for field in group_by] + [("filter", entry) for entry in filters]
    options = (("since", since), ("until", until), ("time_basis", time_basis), ("limit", limit))
    if names is not None:
        items.append(("names", names))
    for name, value in options:
        if value is not None:
            items.append((name, str(value)))
    if include_test:
        items.append(("include_test", "true"))
    settings = _settings(database_url=database_url)
    store = _store(settings.database_url)
    try:
        partner_id = _partner_id(store, partner) if partner else None
        query = parse_report_query(Report(report_name), items, partner_id=partner_id, now=utcnow())
        found = answer(store, query, Deadline.after(settings.report_timeout_s))
    except IngestError as exc:
        raise click.UsageError(exc.message) from None
    except (ReportTimedOut, StorageError) as exc:
        raise click.ClickException(str(exc)) from None
    finally:
        store.close_sync()
    writer = render.write_json if as_json else render.write_csv if as_csv else render.write_table
    writer(found, sys.stdout)


def _partner_id(store: Store, partner: str) -> str:
    """The id of the partner named or identified by `partner`."""
    for record in store.list_keys():
        if partner in (record.partner_id, record.partner_name):
            return record.partner_id
    raise click.BadParameter(f"no partner {partner!r}", param_hint="--partner")


from thrad_events.cli_admin import audit, keys_rotate, partners  # noqa: E402
from thrad_events.client.cli import send  # noqa: E402

main.add_command(send)
main.add_command(audit)
main.add_command(partners)
keys.add_command(keys_rotate)

from thrad_events.cli_test_rows import test_rows  # noqa: E402

main.add_command(test_rows)

from thrad_events.cli_tags import tags  # noqa: E402

main.add_command(tags)

from thrad_events.cli_delivery import rejections  # noqa: E402

main.add_command(rejections)


@main.group()
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


if __name__ == "__main__":
    main()
