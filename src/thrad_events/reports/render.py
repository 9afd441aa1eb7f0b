"""Report output for the CLI: a table (rich), the HTTP endpoint's JSON, or CSV.

Table and CSV flatten nested values into columns of their own: revenue.USD, time_to_convert_s.p50.
Group values are client-sent text: the table shows them with control characters made visible and
never reads them as rich markup, the CSV keeps them from starting a formula (reports/safe_text.py);
the JSON is exact.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, TextIO

import msgspec

from thrad_events.reports.aggregate import PERCENTILES
from thrad_events.reports.safe_text import csv_cell, terminal_text
from thrad_events.schemas import ReportResponse

METRICS = {
    "events": ("events",),
    "conversions": ("conversions", "revenue"),
    "funnel": ("clicks", "converted_clicks", "conversions", "conversion_rate", "time_to_convert_s"),
}
# Nested metrics that may be null as a whole: spread into their columns, each empty.
_NESTED = {"time_to_convert_s": tuple(PERCENTILES)}
_encoder = msgspec.json.Encoder()


def flatten(response: ReportResponse) -> tuple[list[str], list[dict[str, Any]]]:
    """Columns (group fields first, then metrics in their order) and one flat dict per row."""
    rows: list[dict[str, Any]] = []
    for row in response.rows:
        flat: dict[str, Any] = {}
        for key, value in row.items():
            if key in response.group_by:
                flat[key] = value
            elif isinstance(value, dict):
                flat.update({f"{key}.{sub}": item for sub, item in value.items()})
            elif value is None and key in _NESTED:
                flat.update({f"{key}.{sub}": None for sub in _NESTED[key]})
            else:
                flat[key] = value
        rows.append(flat)
    order = {name: i for i, name in enumerate(METRICS[response.report])}
    found = dict.fromkeys(key for row in rows for key in row if key not in response.group_by)
    if not rows:
        found = dict.fromkeys(name for name in METRICS[response.report] if name != "revenue")
    metrics = sorted(found, key=lambda key: (order.get(key.split(".", 1)[0], len(order)), key))
    return [*response.group_by, *metrics], rows


def write_json(response: ReportResponse, out: TextIO) -> None:
    out.write(_encoder.encode(response).decode())
    out.write("\n")


def write_csv(response: ReportResponse, out: TextIO) -> None:
    write_csv_rows(*flatten(response), out)


def write_csv_rows(columns: Sequence[str], rows: Iterable[Mapping[str, Any]], out: TextIO) -> None:
    """A header row, then each row's values under `columns` (any other key left out)."""
    writer = csv.DictWriter(out, fieldnames=columns, lineterminator="\n", extrasaction="ignore")
    writer.writeheader()
    for row in rows:
        writer.writerow(
            {
                key: csv_cell(value) if isinstance(value, str) else value
                for key, value in row.items()
            }
        )


def write_table(response: ReportResponse, out: TextIO) -> None:
    from rich.console import Console
    from rich.table import Table
    from rich.text import Text

    columns, rows = flatten(response)
    cells = [[cell_text(row.get(column)) for column in columns] for row in rows]
    scope = f"partner {response.partner_id}" if response.partner_id else "all partners"
    table = Table(
        caption=f"truncated at {len(rows)} groups: raise --limit" if response.truncated else None
    )
    for column in columns:
        numeric = column not in response.group_by
        table.add_column(column, justify="right" if numeric else "left", no_wrap=True)
    for line in cells:
        # Text, not str: a cell's brackets are shown, never read as markup.
        table.add_row(*(Text(cell) for cell in line))
    console = Console(file=out)
    if not console.is_terminal:
        # Piped output is not cut to 80 columns: as wide as the widest line needs.
        widths = [
            max([len(column), *(len(line[i]) for line in cells)])
            for i, column in enumerate(columns)
        ]
        console = Console(file=out, width=max(80, sum(widths) + 3 * len(columns) + 1))
    period = f"{response.since} to {response.until} by {response.time_basis} time"
    console.print(Text(f"{response.report}, {period}, {scope}"), soft_wrap=True)
    console.print(table)


def cell_text(value: Any) -> str:
    """A table cell: `-` for nothing, else the value's text with control characters shown."""
    if value is None:
        return "-"
    return terminal_text(str(value))
