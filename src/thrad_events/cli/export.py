"""`thrad-events export`: stored rows to stdout as JSON lines or CSV, oldest first, streamed."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from typing import Any

import click

from thrad_events.cli.common import cli_store, database_option, parse_time, partner_id_of


@click.command()
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

    store = cli_store(database_url)
    if partner is not None and table == "clicks":
        raise click.BadParameter("clicks belong to no partner", param_hint="--partner")
    rows: Iterator[dict[str, Any]] = store.export_rows(
        table,
        parse_time(since, "--since"),
        parse_time(until, "--until"),
        partner_id=partner_id_of(store, partner) if partner is not None else None,
        limit=limit,
        include_test=include_test,
    )
    writer = write_jsonl if fmt == "jsonl" else write_csv
    writer(table, rows, sys.stdout)
