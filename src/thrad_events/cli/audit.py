"""`thrad-events audit`: the audit trail of every operator action, over HTTP or the CLI."""

from __future__ import annotations

import click
import msgspec

from thrad_events.auth import admin
from thrad_events.cli.common import cli_store, database_option, parse_time, write_table

_json = msgspec.json.Encoder()


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
    store = cli_store(database_url)
    entries = admin.audit_entries(store, parse_time(since, "--since"), limit)
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
