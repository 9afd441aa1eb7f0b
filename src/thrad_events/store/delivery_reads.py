"""Reading back delivery accounting (store/delivery.py), and its retention: the same SQL on both
stores, run on a DB-API connection of the calling thread (never on the serving loop)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import msgspec

from thrad_events.store.delivery import RATE_LIMITED, minute_after, minute_of
from thrad_events.store.dialect import SqlDialect

_decode = msgspec.json.Decoder().decode

# Delivery counts outlive the rejection rows: a year of reconciliation, and some.
COUNTS_KEPT_DAYS = 400
# A report's time buckets: the first characters of a minute (YYYY-MM-DDTHH:MM).
BUCKETS = {"day": 10, "hour": 13, "minute": 16}
GROUPS = (*BUCKETS, "route")
REJECTION_FIELDS = (
    "received_at",
    "partner_id",
    "key_id",
    "route",
    "status",
    "code",
    "message",
    "details",
    "request_id",
    "body",
)


# sqlite3's or psycopg's (sync) connection: both take execute(sql, params) and give a cursor.
Connection = Any


@dataclass(frozen=True, slots=True)
class RejectionsQuery:
    since: datetime  # inclusive
    until: datetime  # exclusive
    partner_id: str | None  # None: every partner
    limit: int


@dataclass(frozen=True, slots=True)
class RejectionsPage:
    rejections: list[dict[str, Any]]  # newest first
    truncated: bool
    # Refusals in the range counted but not kept (flood bound), and 429s per key and minute.
    not_kept: int
    rate_limited: list[dict[str, Any]]


@dataclass(frozen=True, slots=True)
class DeliveryQuery:
    since: datetime  # inclusive, counted from the minute it falls in
    until: datetime  # exclusive, counted up to the end of the minute it falls in
    partner_id: str | None
    group_by: tuple[str, ...]  # of GROUPS


def _scope(query: RejectionsQuery | DeliveryQuery, column_filter: str) -> tuple[str, list[Any]]:
    if query.partner_id is None:
        return "", []
    return column_filter, [query.partner_id]


def read_rejections(
    conn: Connection, dialect: SqlDialect, query: RejectionsQuery
) -> RejectionsPage:
    partner_sql, partner_args = _scope(query, " AND partner_id = ?")
    rows = conn.execute(
        dialect.sql(
            f"SELECT {', '.join(REJECTION_FIELDS)} FROM rejections "
            f"WHERE received_at >= ? AND received_at < ?{partner_sql} "
            "ORDER BY received_at DESC, id DESC LIMIT ?"
        ),
        [
            dialect.bind_time(query.since),
            dialect.bind_time(query.until),
            *partner_args,
            query.limit + 1,
        ],
    ).fetchall()
    found = []
    for row in rows[: query.limit]:
        item = dict(zip(REJECTION_FIELDS, row, strict=True))
        item["received_at"] = dialect.read_time(item["received_at"])
        item["details"] = _decode(item["details"])
        found.append(item)
    minutes = [minute_of(query.since), minute_after(query.until)]
    (not_kept,) = conn.execute(
        dialect.sql(
            "SELECT coalesce(sum(unkept), 0) FROM delivery_counts "
            f"WHERE minute >= ? AND minute < ?{partner_sql}"
        ),
        [*minutes, *partner_args],
    ).fetchone()
    limited = conn.execute(
        dialect.sql(
            "SELECT partner_id, key_id, minute, sum(count) FROM delivery_counts "
            f"WHERE outcome = ? AND minute >= ? AND minute < ?{partner_sql} "
            "GROUP BY partner_id, key_id, minute ORDER BY minute DESC, partner_id, key_id LIMIT ?"
        ),
        [RATE_LIMITED, *minutes, *partner_args, query.limit],
    ).fetchall()
    return RejectionsPage(
        rejections=found,
        truncated=len(rows) > query.limit,
        not_kept=int(not_kept),
        rate_limited=[
            {"partner_id": p, "key_id": k, "minute": m, "count": int(c)} for p, k, m, c in limited
        ],
    )


def read_delivery(
    conn: Connection, dialect: SqlDialect, query: DeliveryQuery
) -> list[dict[str, Any]]:
    """One row per partner and group: received = stored + duplicate + rejected + rate_limited."""
    groups = [
        f"substr(minute, 1, {BUCKETS[name]})" if name in BUCKETS else name
        for name in query.group_by
    ]
    partner_sql, partner_args = _scope(query, " AND partner_id = ?")
    selected = ", ".join(["partner_id", *groups, "outcome"])
    positions = ", ".join(str(i + 1) for i in range(len(groups) + 2))
    found = conn.execute(
        dialect.sql(
            f"SELECT {selected}, sum(count) FROM delivery_counts "
            f"WHERE minute >= ? AND minute < ?{partner_sql} "
            f"GROUP BY {positions} ORDER BY {positions}"
        ),
        [minute_of(query.since), minute_after(query.until), *partner_args],
    ).fetchall()
    rows: dict[tuple[Any, ...], dict[str, Any]] = {}
    for record in found:
        partner_id, *values, outcome, count = record
        row = rows.get((partner_id, *values))
        if row is None:
            row = rows[(partner_id, *values)] = {
                "partner_id": partner_id,
                **dict(zip(query.group_by, values, strict=True)),
                "received": 0,
                "stored": 0,
                "duplicate": 0,
                "rejected": {},
                "rate_limited": 0,
            }
        count = int(count)
        row["received"] += count
        if outcome in ("stored", "duplicate", RATE_LIMITED):
            row[outcome] += count
        else:
            row["rejected"][outcome] = row["rejected"].get(outcome, 0) + count
    return list(rows.values())


def prune(
    run: Callable[[Callable[[Connection], int]], int],
    dialect: SqlDialect,
    *,
    rejections_before: datetime,
    counts_before: datetime,
    batch_rows: int = 1000,
) -> int:
    """Delete rejection rows received before `rejections_before` and counts before
    `counts_before`, each batch in a short transaction of its own (`run` gives one); the
    rejection rows deleted."""
    delete_rows = dialect.sql(
        "DELETE FROM rejections WHERE id IN "
        "(SELECT id FROM rejections WHERE received_at < ? ORDER BY id LIMIT ?)"
    )
    delete_counts = dialect.sql(
        "DELETE FROM delivery_counts WHERE minute IN (SELECT DISTINCT minute FROM "
        "delivery_counts WHERE minute < ? ORDER BY minute LIMIT ?)"
    )
    deleted = 0
    args = [dialect.bind_time(rejections_before), batch_rows]
    while True:
        done = run(lambda conn: conn.execute(delete_rows, args).rowcount)
        deleted += max(done, 0)
        if done < batch_rows:
            break
    minute = minute_of(counts_before)
    # A batch of minutes: each holds a few rows per partner, route and outcome.
    while run(lambda conn: conn.execute(delete_counts, [minute, 60]).rowcount) > 0:
        pass
    return deleted
