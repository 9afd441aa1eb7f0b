"""Exports of stored rows as JSON lines or CSV, with the contract's field names."""

from __future__ import annotations

import csv
from collections.abc import Iterable
from typing import Any, TextIO

import msgspec

from thrad_events.store.base import JSON_COLUMNS, TABLES

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
        writer.writerow(
            {
                key: _encoder.encode(value).decode()
                if key in JSON_COLUMNS and value is not None
                else value
                for key, value in row.items()
            }
        )
