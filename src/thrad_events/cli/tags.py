"""`thrad-events tags`: the browser Tag registry from the command line (create, list, update).

The same actions as /v1/admin/tags (auth/tags.py), recorded in the audit trail with the actor
`cli`."""

from __future__ import annotations

import click
import msgspec

from thrad_events.auth import admin
from thrad_events.auth.tags import create_tag, list_tags, update_tag
from thrad_events.cli.common import acting, cli_store, database_option, write_table
from thrad_events.http.admin_tags import tag_answer
from thrad_events.reports.safe_text import terminal_text
from thrad_events.store.tags import KEEP, TagRecord

_json = msgspec.json.Encoder()
# The shell lists them all; the HTTP list is bounded by its limit parameter.
_EVERY_TAG = 1_000_000


def _echo(tag: TagRecord, as_json: bool) -> None:
    if as_json:
        click.echo(_json.encode(tag_answer(tag)))
        return
    click.echo(f"tag_id:     {terminal_text(tag.tag_id)}")
    click.echo(f"partner:    {terminal_text(tag.partner_name)} ({tag.partner_id})")
    click.echo(f"origins:    {' '.join(tag.origins)}")
    click.echo(f"daily_cap:  {_cap(tag)}")


@click.group()
def tags() -> None:
    """Register browser Tags: which partner a tag_id belongs to, and the origins that send."""


@tags.command("create")
@database_option
@click.option("--partner", required=True, help="Partner name; created if new")
@click.option("--tag-id", required=True, help="The tag_id the advertiser's pages send")
@click.option(
    "--origin",
    "origins",
    multiple=True,
    required=True,
    help="https://shop.example.com[:port], repeatable: the pages allowed to send for the tag",
)
@click.option(
    "--daily-cap", type=click.IntRange(min=1), default=None, help="Requests per UTC day at most"
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object")
def tags_create(
    database_url: str | None,
    partner: str,
    tag_id: str,
    origins: tuple[str, ...],
    daily_cap: int | None,
    as_json: bool,
) -> None:
    """Register a tag for a partner and the origins allowed to send for it."""
    store = cli_store(database_url)
    tag = acting(
        lambda: create_tag(
            store,
            admin.CLI_ACTOR,
            partner=partner,
            tag_id=tag_id,
            origins=origins,
            daily_cap=daily_cap,
        )
    )
    _echo(tag, as_json)


@tags.command("list")
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line")
def tags_list(database_url: str | None, as_json: bool) -> None:
    """List registered tags, with a header row."""
    found, _ = list_tags(cli_store(database_url), None, _EVERY_TAG)
    if as_json:
        for tag in found:
            click.echo(_json.encode(tag_answer(tag)))
        return
    write_table(
        ("TAG_ID", "PARTNER", "DAILY_CAP", "ORIGINS"),
        [(tag.tag_id, tag.partner_name, _cap(tag), " ".join(tag.origins)) for tag in found],
    )


def _cap(tag: TagRecord) -> str:
    return str(tag.daily_cap) if tag.daily_cap is not None else "none"


@tags.command("update")
@database_option
@click.argument("tag_id")
@click.option(
    "--daily-cap", type=click.IntRange(min=0), default=None, help="Requests per UTC day; 0 = none"
)
@click.option("--origin", "origins", multiple=True, help="Replace the origins (repeatable)")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object")
def tags_update(
    database_url: str | None,
    tag_id: str,
    daily_cap: int | None,
    origins: tuple[str, ...],
    as_json: bool,
) -> None:
    """Change a tag's daily cap or origins; every server process applies it within seconds."""
    if daily_cap is None and not origins:
        raise click.UsageError("give --daily-cap or --origin")
    store = cli_store(database_url)
    tag = acting(
        lambda: update_tag(
            store,
            admin.CLI_ACTOR,
            tag_id,
            daily_cap=KEEP if daily_cap is None else (daily_cap or None),
            origins=list(origins) if origins else KEEP,
        )
    )
    _echo(tag, as_json)
