"""Exports of stored rows as JSON lines or CSV, with the request's own field names.

JSON lines are exact. A CSV cell that a spreadsheet could take for a formula gets a leading `'`
(reports/safe_text.py); a plain number such as a conversion_value of -5.00 stays as it is.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from typing import Any, TextIO

import msgspec

from thrad_events.fields import TABLES, Kind, kind_of
from thrad_events.reports.safe_text import csv_cell

# Decimals inside params stay JSON numbers with their digits; conversion_value is stored as text.
_encoder = msgspec.json.Encoder(decimal_format="number")


# Rows a chunk holds: big enough that a chunk's overhead is small, small enough that a stream
# holds little (a few chunks per export are in flight at most).
CHUNK_ROWS = 500


def jsonl_chunks(rows: Iterable[dict[str, Any]], chunk_rows: int = CHUNK_ROWS) -> Iterator[bytes]:
    """One JSON object per line, `chunk_rows` lines a chunk."""
    buffer = bytearray()
    count = 0
    for row in rows:
        buffer += _encoder.encode(row)
        buffer += b"\n"
        count += 1
        if count == chunk_rows:
            yield bytes(buffer)
            buffer.clear()
            count = 0
    if buffer:
        yield bytes(buffer)


def csv_chunks(
    table: str, rows: Iterable[dict[str, Any]], chunk_rows: int = CHUNK_ROWS
) -> Iterator[bytes]:
    """A header row, then one row per stored row with its cells made formula-safe."""
    out = io.StringIO()
    writer = csv.DictWriter(out, fieldnames=list(TABLES[table].columns), lineterminator="\n")
    writer.writeheader()
    count = 0
    for row in rows:
        writer.writerow({key: _csv_value(key, value) for key, value in row.items()})
        count += 1
        if count == chunk_rows:
            yield out.getvalue().encode()
            out.seek(0)
            out.truncate()
            count = 0
    if out.tell():
        yield out.getvalue().encode()


def write_jsonl(table: str, rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    for chunk in jsonl_chunks(rows):
        out.write(chunk.decode())


def write_csv(table: str, rows: Iterable[dict[str, Any]], out: TextIO) -> None:
    for chunk in csv_chunks(table, rows):
        out.write(chunk.decode())


def _csv_value(column: str, value: Any) -> Any:
    if value is not None and kind_of(column) is Kind.JSON:
        value = _encoder.encode(value).decode()
    return csv_cell(value) if isinstance(value, str) else value
