"""`thrad-events keys`: create, list, update, rotate and revoke API keys.

The same operator actions as /v1/admin/ (auth/admin.py), recorded in the audit trail with the
actor `cli`."""

from __future__ import annotations

from typing import Any

import click
import msgspec

from thrad_events.auth import admin
from thrad_events.cli.common import acting, cli_store, database_option, parse_time, write_table
from thrad_events.instants import show_time, utcnow

_json = msgspec.json.Encoder(decimal_format="number")
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


@click.group()
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
    expires = parse_time(expires_at, "--expires-at")
    if expires is not None and expires <= utcnow():
        raise click.BadParameter(
            f"{expires_at} is already past: the key would be refused at once",
            param_hint="--expires-at",
        )
    store = cli_store(database_url)
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
    for record in cli_store(database_url).list_keys():
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


@keys.command("revoke")
@database_option
@click.argument("key_id")
def keys_revoke(database_url: str | None, key_id: str) -> None:
    """Revoke a key; every server process refuses it within 5 seconds."""
    store = cli_store(database_url)
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
    store = cli_store(database_url)
    changes = {"rate_limit": rate_limit or None}
    acting(lambda: admin.update_key(store, admin.CLI_ACTOR, key_id, changes))
    click.echo(f"{key_id}: rate limit {rate_limit or 'server default'}")


@keys.command("rotate")
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
    store = cli_store(database_url)
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
