"""`thrad-events test-rows purge`: delete old rows of test keys now, as the server does hourly."""

from __future__ import annotations

import click
import msgspec

from thrad_events.cli.common import cli_settings, cli_store, database_option
from thrad_events.store.errors import StorageError
from thrad_events.store.test_retention import purge_before


@click.group("test-rows")
def test_rows() -> None:
    """Rows sent with test keys (and test clicks)."""


@test_rows.command("purge")
@database_option
@click.option(
    "--older-than-days",
    type=click.IntRange(min=0),
    default=None,
    help="Delete test rows received more than this many days ago "
    "[default: THRAD_TEST_RETENTION_DAYS, 7]",
)
@click.option("--json", "as_json", is_flag=True, help="Print the rows deleted per table as JSON")
def purge(database_url: str | None, older_than_days: int | None, as_json: bool) -> None:
    """Delete old test rows in short batches (live rows are never touched)."""
    settings = cli_settings(database_url=database_url)
    days = settings.test_retention_days if older_than_days is None else older_than_days
    store = cli_store(settings.database_url)
    try:
        deleted = purge_before(store, days)
    except StorageError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(msgspec.json.encode(deleted))
        return
    for table, count in deleted.items():
        click.echo(f"{table}: {count} test rows deleted")
