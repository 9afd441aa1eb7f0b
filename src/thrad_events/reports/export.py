"""Exports of stored rows as JSON lines or CSV, with the request's own field names.

JSON lines are exact. A CSV cell that a spreadsheet could take for a formula gets a leading `'`
(reports/safe_text.py); a plain number such as a conversion_value of -5.00 stays as it is.
"""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, TextIO

import msgspec

from thrad_events.reports.safe_text import csv_cell
from thrad_events.store.columns import JSON_COLUMNS, TABLES

# Decimals inside params stay JSON numbers with their digits; conversion_value is stored as text.
_encoder = msgspec.json.Encoder(decimal_format="number")


def write_jsonl(table: str, rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    for row in rows:
        out.write(_encoder.encode(row).decode())
        out.write("\n")


def write_csv(table: str, rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    writer = csv.DictWriter(out, fieldnames=list(TABLES[table]), lineterminator="\n")
    writer.writeheader()
    for row in rows:
        writer.writerow({key: _csv_value(key, value) for key, value in row.items()})


def _csv_value(column: str, value: Any) -> Any:
    if value is not None and column in JSON_COLUMNS:
        value = _encoder.encode(value).decode()
    return csv_cell(value) if isinstance(value, str) else value
