"""How the two stores differ in the SQL the store modules write once (admin_sql.py, tags.py,
delivery.py, delivery_reads.py, export_keyset.py): the placeholder, how a time is bound and read
back, and whether rows about to change are locked. The reports' expressions are
reports/dialects.py's.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from thrad_events.instants import format_time


@dataclass(frozen=True, slots=True)
class SqlDialect:
    name: str  # the store's: what other layers tell the stores apart by (reports/dialects.py)
    placeholder: str
    bind_time: Callable[[datetime], Any]  # a time as the store compares it
    read_time: Callable[[Any], str]  # a stored time as format_time's text
    # A row about to change is read FOR UPDATE, so that two changes of it take turns.
    lock_rows: bool

    def sql(self, text: str) -> str:
        """`text`, written with `?`, in this store's placeholder."""
        return text if self.placeholder == "?" else text.replace("?", self.placeholder)


def _same(moment: datetime) -> datetime:
    return moment


# SQLite keeps times as format_time's text, and its write lock already serialises writes.
SQLITE = SqlDialect("sqlite", "?", format_time, str, lock_rows=False)
POSTGRES = SqlDialect("postgresql", "%s", _same, format_time, lock_rows=True)
