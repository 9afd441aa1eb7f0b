"""The PostgreSQL writer's side of delivery accounting (store/delivery.py): the stored and
duplicate counts of a batch, in its transaction, and the HTTP side's rejection rows and counts."""

from __future__ import annotations

import os
from collections import Counter
from collections.abc import Sequence
from typing import Any

import psycopg

from thrad_events.store.delivery import (
    INSERT_REJECTION_SQL,
    KEPT_IN_SECOND_SQL,
    UPSERT_COUNTS_SQL,
    Delivered,
    DeliveryBatch,
    by_key_second,
    count_params,
    minute_of,
    over_bound,
    rejection_params,
    second_bounds,
    unkept_counts,
)
from thrad_events.store.dialect import POSTGRES

AsyncConn = psycopg.AsyncConnection[Any]

# Processes (and nodes) add to counter rows of their own shard, so that two writers' commits do
# not wait on each other's row locks; a report sums the shards. Two processes sharing a shard
# only wait, never miscount.
SHARD = os.getpid() % 8
_UPSERT = POSTGRES.sql(UPSERT_COUNTS_SQL)
_INSERT = POSTGRES.sql(INSERT_REJECTION_SQL)
_KEPT = POSTGRES.sql(KEPT_IN_SECOND_SQL)


def delivered(
    writes: Sequence[tuple[str | None, int, int, Sequence[tuple[Any, ...]]]],
    answers: Sequence[Sequence[Any]],
) -> Delivered | None:
    """Counts of the rows of `writes` (route, partner_id's and received_at's places, rows) by
    their answers; None when no write was a request's."""
    found: Delivered | None = None
    for (route, partner_at, received_at, rows), results in zip(writes, answers, strict=True):
        if route is None:
            continue
        found = found or Delivered()
        for values, result in zip(rows, results, strict=True):
            found.add(route, values[partner_at], minute_of(values[received_at]), result)
    return found


async def add_counts(conn: AsyncConn, counts: Delivered | None) -> None:
    if counts is not None and counts.counts:
        async with conn.cursor() as cursor:
            await cursor.executemany(_UPSERT, count_params(counts.counts, Counter(), SHARD))


async def write_batch(conn: AsyncConn, batch: DeliveryBatch) -> int:
    """Rejection rows and counts in one transaction of their own; the rows kept.

    The flood bound holds across processes: a key's rows of one second are counted under a
    transaction lock on that key, so two writers cannot both fill the same second.
    """
    unkept = batch.unkept.copy()
    kept = []
    async with conn.transaction(), conn.cursor() as cursor:
        groups = by_key_second(batch.rows)
        for key_id in sorted({key_id for key_id, _ in groups}):
            await cursor.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key_id,))
        for (key_id, second), rows in groups.items():
            start, end = second_bounds(second)
            await cursor.execute(_KEPT, (key_id, start, end))
            found = await cursor.fetchone()
            fit, dropped = over_bound(rows, int(found[0]) if found else 0)
            kept.extend(fit)
            unkept.update(unkept_counts(dropped))
        if kept:
            await cursor.executemany(
                _INSERT, [rejection_params(row, POSTGRES.bind_time) for row in kept]
            )
        params = count_params(batch.counts, unkept, SHARD)
        if params:
            await cursor.executemany(_UPSERT, params)
    return len(kept)
