"""The SQLite writer's side of delivery accounting (store/delivery.py): the stored and duplicate
counts of each commit, and the HTTP side's batches of rejection rows and counts."""

from __future__ import annotations

import logging
import sqlite3
from collections import Counter
from typing import Any

from thrad_events.fields import CONVERSIONS, EVENTS
from thrad_events.instants import format_time
from thrad_events.store.delivery import (
    INSERT_REJECTION_SQL,
    KEPT_IN_SECOND_SQL,
    UPSERT_COUNTS_SQL,
    Delivered,
    DeliveryBatch,
    by_key_second,
    count_params,
    over_bound,
    rejection_params,
    second_bounds,
    unkept_counts,
)
from thrad_events.store.errors import StorageError
from thrad_events.store.sqlite_writes import ROW_WRITES, Write

log = logging.getLogger(__name__)

# Every commit is under the file's write lock: writers of all processes can share counter rows.
SHARD = 0
# Events and conversions put partner_id and received_at at the same places.
_PARTNER = EVENTS.columns.index("partner_id")
_RECEIVED = EVENTS.columns.index("received_at")
assert CONVERSIONS.columns.index("partner_id") == _PARTNER
assert CONVERSIONS.columns.index("received_at") == _RECEIVED


def count_delivered(
    connection: sqlite3.Connection, writes: list[Write], results: list[Any]
) -> None:
    """The commit's stored and duplicate rows counted, in its own transaction (a Settle)."""
    delivered: Delivered | None = None
    for write, answer in zip(writes, results, strict=True):
        if not isinstance(write, ROW_WRITES) or isinstance(answer, BaseException):
            continue
        route = write.route
        if route is None:
            continue
        delivered = delivered or Delivered()
        for values, result in write.delivered(answer):
            # received_at is format_time's text: its first 16 characters are the minute.
            delivered.add(route, values[_PARTNER], values[_RECEIVED][:16], result)
    if delivered is not None and delivered.counts:
        connection.executemany(UPSERT_COUNTS_SQL, count_params(delivered.counts, Counter(), SHARD))


class DeliveryWrite:
    """A batch of rejection rows and counts: written in a savepoint of the commit it joins, so
    that a failure of it fails it alone and never the accepted rows beside it."""

    __slots__ = ("batch",)

    def __init__(self, batch: DeliveryBatch) -> None:
        self.batch = batch

    def __call__(self, connection: sqlite3.Connection) -> Any:
        connection.execute("SAVEPOINT delivery")
        try:
            kept = self._write(connection)
        except sqlite3.Error as exc:
            connection.execute("ROLLBACK TO delivery")
            connection.execute("RELEASE delivery")
            log.warning("rejections not written: %s", exc)
            return StorageError(str(exc))
        connection.execute("RELEASE delivery")
        return kept

    def _write(self, connection: sqlite3.Connection) -> int:
        batch = self.batch
        unkept = batch.unkept.copy()
        kept = []
        for (key_id, second), rows in by_key_second(batch.rows).items():
            start, end = second_bounds(second)
            (already,) = connection.execute(
                KEPT_IN_SECOND_SQL, (key_id, format_time(start), format_time(end))
            ).fetchone()
            fit, dropped = over_bound(rows, int(already))
            kept.extend(fit)
            unkept.update(unkept_counts(dropped))
        connection.executemany(
            INSERT_REJECTION_SQL, [rejection_params(row, format_time) for row in kept]
        )
        connection.executemany(UPSERT_COUNTS_SQL, count_params(batch.counts, unkept, SHARD))
        return len(kept)
