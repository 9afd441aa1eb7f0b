"""`thrad-events rejections` and `thrad-events report delivery`: what became of what partners sent,
over the database directly (an operator's view), as the HTTP endpoints answer it.

What a client sent (a rejected body, a message quoting it) is shown inert: control characters
made visible on a terminal, never read as markup, and kept from starting a formula in CSV.
"""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Iterator
from typing import Any, TextIO

import click
import msgspec

from thrad_events.cli.common import cli_store, database_option, partner_id_of
from thrad_events.errors import IngestError
from thrad_events.instants import utcnow
from thrad_events.reports.delivery_query import parse_delivery_query, parse_rejections_query
from thrad_events.reports.render import cell_text, write_csv_rows
from thrad_events.store.base import Store
from thrad_events.store.errors import StorageError

_json = msgspec.json.Encoder()
# Shown of a body in the table; --json gives it whole (2 KiB at most).
BODY_CHARS = 80


@click.command()
@database_option
@click.option("--partner", default=None, help="Only this partner's (name or id)")
@click.option("--since", default=None, help="ISO-8601, inclusive [default: 7 days ago]")
@click.option("--until", default=None, help="ISO-8601, exclusive [default: now]")
@click.option("--limit", type=int, default=None, help="Most rejections shown [default 100]")
@click.option("--json", "as_json", is_flag=True, help="The HTTP endpoint's JSON")
def rejections(
    database_url: str | None,
    partner: str | None,
    since: str | None,
    until: str | None,
    limit: int | None,
    as_json: bool,
) -> None:
    """Refused requests kept, newest first: as GET /v1/api/rejections."""
    options = (("since", since), ("until", until), ("limit", limit))
    items = [(n, str(v)) for n, v in options if v is not None]
    with _reading(database_url, partner) as (store, partner_id):
        page = store.rejections(parse_rejections_query(items, partner_id=partner_id, now=utcnow()))
    if as_json:
        answer = {
            "partner_id": partner_id,
            "rejections": page.rejections,
            "truncated": page.truncated,
            "not_kept": page.not_kept,
            "rate_limited": page.rate_limited,
        }
        click.echo(_json.encode(answer).decode())
        return
    columns = ("received_at", "partner_id", "key_id", "route", "status", "code", "message", "body")
    rows = [
        {
            **found,
            "body": found["body"][:BODY_CHARS] + ("..." if len(found["body"]) > BODY_CHARS else ""),
        }
        for found in page.rejections
    ]
    caption = f"{page.not_kept} more counted but not kept (flood bound)" if page.not_kept else None
    _table(columns, rows, caption, sys.stdout)
    if page.rate_limited:
        limited = sum(item["count"] for item in page.rate_limited)
        click.echo(f"rate limited (429, counted per key and minute): {limited}")


def delivery_report(
    database_url: str | None,
    since: str | None,
    until: str | None,
    group_by: tuple[str, ...],
    partner: str | None,
    as_json: bool,
    as_csv: bool,
) -> None:
    """`report delivery`: received, stored, duplicate, rejected by code, rate limited."""
    items = [("group_by", field) for field in group_by]
    items += [(n, v) for n, v in (("since", since), ("until", until)) if v is not None]
    with _reading(database_url, partner) as (store, partner_id):
        query = parse_delivery_query(items, partner_id=partner_id, now=utcnow())
        found = store.delivery(query)
    if as_json:
        click.echo(_json.encode({"report": "delivery", "rows": found}).decode())
        return
    codes = sorted({code for row in found for code in row["rejected"]})
    columns = (
        "partner_id",
        *query.group_by,
        "received",
        "stored",
        "duplicate",
        *(f"rejected.{code}" for code in codes),
        "rate_limited",
    )
    flat = [{**row, **{f"rejected.{c}": row["rejected"].get(c, 0) for c in codes}} for row in found]
    if as_csv:
        write_csv_rows(columns, flat, sys.stdout)
        return
    _table(columns, flat, None, sys.stdout)


@contextlib.contextmanager
def _reading(database_url: str | None, partner: str | None) -> Iterator[tuple[Store, str | None]]:
    """The store and the id of `partner` (a name or id; None: every partner) to read with; a
    bad parameter is a usage error, a failing store one line."""
    store = cli_store(database_url)
    try:
        yield store, partner_id_of(store, partner) if partner else None
    except IngestError as exc:
        raise click.UsageError(exc.message) from None
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None


def _table(
    columns: tuple[str, ...], rows: list[dict[str, Any]], caption: str | None, out: TextIO
) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    table = Table(caption=caption)
    for column in columns:
        table.add_column(column, overflow="fold")
    for row in rows:
        # Text, not str: brackets in a client's text are shown, never read as markup.
        table.add_row(*(Text(cell_text(row.get(column))) for column in columns))
    console = Console(file=out)
    if not console.is_terminal:
        console = Console(file=out, width=200)
    console.print(table)
