"""`thrad-events audit`, `partners` and `keys rotate`: the admin API's actions from the shell.

They call the same operator actions as /v1/admin/ (auth/admin.py), recorded in the audit trail
with the actor `cli`. cli.py loads this module at its end (it uses cli's options), so the
commands are reached through `thrad_events.cli`.
"""

from __future__ import annotations

from typing import Any

import click
import msgspec

from thrad_events.auth import admin
from thrad_events.cli import _parse_time, _store, acting, database_option, write_table
from thrad_events.reports.safe_text import terminal_text

_json = msgspec.json.Encoder()
# The shell lists them all; the HTTP list is bounded by its limit parameter.
_EVERY_PARTNER = 1_000_000


@click.command()
@database_option
@click.option("--since", default=None, help="Only actions at or after this ISO-8601 time")
@click.option(
    "--limit",
    type=click.IntRange(1, admin.MAX_LIST_LIMIT),
    default=admin.DEFAULT_LIST_LIMIT,
    show_default=True,
    help="At most this many actions, the newest",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object per line")
def audit(database_url: str | None, since: str | None, limit: int, as_json: bool) -> None:
    """The audit trail: every operator action, over HTTP or the CLI, newest first."""
    store = _store(database_url)
    try:
        entries = admin.audit_entries(store, _parse_time(since, "--since"), limit)
    finally:
        store.close_sync()
    if as_json:
        for entry in entries:
            click.echo(
                _json.encode(
                    {
                        "id": entry.id,
                        "time": entry.at,
                        "actor": entry.actor,
                        "action": entry.action,
                        "target": entry.target,
                        "details": entry.details,
                    }
                )
            )
        return
    rows = [(e.at, e.actor, e.action, e.target, _json.encode(e.details).decode()) for e in entries]
    write_table(("TIME", "ACTOR", "ACTION", "TARGET", "DETAILS"), rows)


@click.group()
def partners() -> None:
    """Create and list partners."""


@partners.command("create")
@database_option
@click.argument("name")
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object")
def partners_create(database_url: str | None, name: str, as_json: bool) -> None:
    """Create a partner (an error if one has that name)."""
    store = _store(database_url)
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
    found, _ = admin.list_partners(_store(database_url), _EVERY_PARTNER)
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


@click.command("rotate")
@database_option
@click.argument("key_id")
@click.option(
    "--grace-seconds",
    type=click.IntRange(0, admin.MAX_GRACE_S),
    default=admin.DEFAULT_GRACE_S,
    show_default=True,
    help="How long the old key keeps working",
)
@click.option("--json", "as_json", is_flag=True, help="Print one JSON object")
def keys_rotate(database_url: str | None, key_id: str, grace_seconds: int, as_json: bool) -> None:
    """Replace a key by a new one with its partner, label, rate limit and expiry; the old key
    keeps working --grace-seconds more, then is expired. The new secret is printed once."""
    store = _store(database_url)
    rotated = acting(lambda: admin.rotate_key(store, admin.CLI_ACTOR, key_id, grace_seconds))
    new, old = rotated.new.record, rotated.old
    if as_json:
        entry: dict[str, Any] = {
            "key_id": new.key_id,
            "api_key": rotated.new.api_key,
            "partner_id": new.partner_id,
            "label": new.label,
            "expires_at": new.expires_at,
            "old_key_expires_at": old.expires_at,
        }
        click.echo(_json.encode(entry))
        return
    click.echo(f"key_id:     {new.key_id}")
    click.echo(f"api_key:    {rotated.new.api_key}   (shown only now)")
    click.echo(f"{old.key_id} stops working at {old.expires_at}")
