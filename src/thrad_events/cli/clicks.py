"""`thrad-events clicks`: signed click links, and a stored click to convert without an ad."""

from __future__ import annotations

import asyncio

import click
import msgspec

from thrad_events.cli.common import cli_settings, cli_store, database_option
from thrad_events.errors import IngestError
from thrad_events.store.errors import StorageError

_json = msgspec.json.Encoder(decimal_format="number")


@click.group()
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

    settings = cli_settings(database_url=database_url)
    secret = click_secret(settings, cli_store(settings.database_url))
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
    from thrad_events.ingest.pipeline import Ingestor, MintedClick, RequestContext

    for value, option in ((campaign_id, "--campaign-id"), (ad_id, "--ad-id"), (bid_id, "--bid-id")):
        if value is not None and not 1 <= len(value) <= 256:
            raise click.BadParameter("must be 1 to 256 characters", param_hint=option)
    settings = cli_settings(database_url=database_url)
    store = cli_store(settings.database_url)
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
