"""`thrad-events partners`: create and list partners.

The same operator actions as /v1/admin/ (auth/admin.py), recorded in the audit trail with the
actor `cli`."""

from __future__ import annotations

import click
import msgspec

from thrad_events.auth import admin
from thrad_events.cli.common import acting, cli_store, database_option, write_table
from thrad_events.reports.safe_text import terminal_text

_json = msgspec.json.Encoder()
# The shell lists them all; the HTTP list is bounded by its limit parameter.
_EVERY_PARTNER = 1_000_000


@click.group()
def partners() -> None:
    """Create and list partners."""


@partners.command("create")
@database_option
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object")
def partners_create(database_url: str | None, name: str, as_json: bool) -> None:
    """Create a partner (an error if one has that name)."""
    store = cli_store(database_url)
    made = acting(lambda: admin.create_partner(store, admin.CLI_ACTOR, name))
    if as_json:
        click.echo(_json.encode({"partner_id": made.partner_id, "name": made.name}))
        return
    click.echo(f"created partner {terminal_text(made.name)}: {made.partner_id}")


@partners.command("list")
@database_option
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line")
def partners_list(database_url: str | None, as_json: bool) -> None:
    """List partners by name, with a header row."""
    found, _ = admin.list_partners(cli_store(database_url), _EVERY_PARTNER)
    if as_json:
        for p in found:
            click.echo(
                _json.encode(
                    {"partner_id": p.partner_id, "name": p.name, "created_at": p.created_at}
                )
            )
        return
    write_table(
        ("PARTNER_ID", "NAME", "CREATED_AT"), [(p.partner_id, p.name, p.created_at) for p in found]
    )
