"""`thrad-events report`: events, conversions, the click funnel (reports/) and the delivery
report (cli/delivery.py), as GET /v1/api/reports/... answers them."""

from __future__ import annotations

import sys

import click

from thrad_events.cli.common import cli_settings, cli_store, database_option, partner_id_of
from thrad_events.cli.delivery import delivery_report
from thrad_events.errors import IngestError
from thrad_events.instants import utcnow
from thrad_events.reports.query import Report
from thrad_events.store.errors import StorageError


@click.command()
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
    from thrad_events.reports import render
    from thrad_events.reports.query import parse_report_query
    from thrad_events.reports.run import answer

    if as_json and as_csv:
        raise click.UsageError("--json and --csv exclude each other")
    if report_name == "delivery":
        if time_basis or filters or limit:
            raise click.UsageError("the delivery report takes no --time-basis, --filter, --limit")
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
    settings = cli_settings(database_url=database_url)
    store = cli_store(settings.database_url)
    try:
        partner_id = partner_id_of(store, partner) if partner else None
        query = parse_report_query(Report(report_name), items, partner_id=partner_id, now=utcnow())
        found = answer(store, query, Deadline.after(settings.report_timeout_s))
    except IngestError as exc:
        raise click.UsageError(exc.message) from None
    except (ReportTimedOut, StorageError) as exc:
        raise click.ClickException(str(exc)) from None
    writer = render.write_json if as_json else render.write_csv if as_csv else render.write_table
    writer(found, sys.stdout)
