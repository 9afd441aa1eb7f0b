"""Delivery accounting as storage sees it: refused requests kept, and counts of how requests ended.

Two tables (migration sqlite 0008, postgres 0006). `rejections` keeps the refused requests of a
known key, one row each. `delivery_counts` counts, per partner, UTC minute, route, outcome and
key, what the partner sent: `stored` and `duplicate` rows are counted by the group-commit writer
from its own answers in the same transaction as the rows (so the count cannot disagree with the
rows, and a retried row is counted as the duplicate it is); refusals and rate-limited requests
are counted by the HTTP side (ingest/delivery.py) and written with the rejection rows.

What a request counts under is its route, which the endpoint wrapper puts in `current_route`
for the request's task: a store reads it when it queues a request's rows, and a write made
outside a request (none set) is not counted.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Iterable, Iterator
from contextvars import ContextVar
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, NamedTuple

from thrad_events.store.records import InsertResult

current_route: ContextVar[str | None] = ContextVar("thrad_route", default=None)

# The statuses whose requests are kept one by one (429s are only counted, 5xx neither).
KEPT_STATUSES = frozenset({400, 404, 408, 413, 415, 422, 431})
BODY_EXCERPT_BYTES = 2048
# Under a flood, rejection rows kept per key and second; the rest are counted as not kept.
KEPT_PER_KEY_PER_S = 100

STORED = "stored"
DUPLICATE = "duplicate"
RATE_LIMITED = "rate_limited"


@dataclass(frozen=True, slots=True)
class RejectionRow:
    received_at: datetime
    partner_id: str
    key_id: str
    route: str
    status: int
    code: str
    message: str
    details: str  # JSON array of {"field", "message"}
    request_id: str
    body: str  # the first BODY_EXCERPT_BYTES of the body, invalid UTF-8 replaced

    def second(self) -> datetime:
        return self.received_at.replace(microsecond=0)


class CountKey(NamedTuple):
    """What one count is kept under. A tuple, so that counting a refusal hashes and compares it
    in C: the HTTP side makes one per refused request."""

    partner_id: str
    minute: str  # UTC, YYYY-MM-DDTHH:MM
    route: str
    outcome: str  # an Outcome's name: stored, duplicate, rate_limited, validation_error, ...
    key_id: str = ""


@dataclass(slots=True)
class DeliveryBatch:
    """What the HTTP side hands the writer at once: rejection rows and counts to add. `unkept`
    counts the refusals that were counted but not kept (flood bound, full buffer)."""

    rows: list[RejectionRow] = field(default_factory=list)
    counts: Counter[CountKey] = field(default_factory=Counter)
    unkept: Counter[CountKey] = field(default_factory=Counter)

    def __bool__(self) -> bool:
        return bool(self.rows or self.counts)

    def merge(self, other: DeliveryBatch) -> None:
        self.rows[:0] = other.rows
        self.counts.update(other.counts)
        self.unkept.update(other.unkept)


def minute_of(moment: datetime) -> str:
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M")


def minute_after(moment: datetime) -> str:
    """The first minute wholly at or after `moment`, unless `moment` starts one: the exclusive
    end of a range counted by the minute, so that the minute `moment` falls in is counted."""
    start = moment.replace(second=0, microsecond=0)
    if start == moment:
        return minute_of(start)
    try:
        return minute_of(start + timedelta(minutes=1))
    except OverflowError:  # the last minute of 9999: "~" sorts after every minute's digits
        return minute_of(start) + "~"


_COUNTED = {InsertResult.INSERTED: STORED, InsertResult.DUPLICATE: DUPLICATE}


class Delivered:
    """The stored and duplicate counts of one commit, gathered from the writer's answers.

    Called once per row inside the writer's transaction, so it tallies plain tuples and makes
    a CountKey once per distinct count."""

    __slots__ = ("_tally",)

    def __init__(self) -> None:
        self._tally: dict[tuple[str, str, str, Any], int] = {}

    def add(self, route: str, partner_id: str, minute: str, result: Any) -> None:
        key = (partner_id, minute, route, result)
        self._tally[key] = self._tally.get(key, 0) + 1

    @property
    def counts(self) -> Counter[CountKey]:
        counts: Counter[CountKey] = Counter()
        for (partner_id, minute, route, result), count in self._tally.items():
            outcome = _COUNTED.get(result) if isinstance(result, InsertResult) else None
            if outcome is not None:
                counts[CountKey(partner_id, minute, route, outcome)] += count
        return counts


# -- the SQL both stores run (written with ?, see store/dialect.py) ------------------------------

UPSERT_COUNTS_SQL = (
    "INSERT INTO delivery_counts "
    "(partner_id, minute, route, outcome, key_id, shard, count, unkept) "
    "VALUES (?, ?, ?, ?, ?, ?, ?, ?) "
    "ON CONFLICT (partner_id, minute, route, outcome, key_id, shard) DO UPDATE SET "
    "count = delivery_counts.count + excluded.count, "
    "unkept = delivery_counts.unkept + excluded.unkept"
)
INSERT_REJECTION_SQL = (
    "INSERT INTO rejections (received_at, partner_id, key_id, route, status, code, message, "
    "details, request_id, body) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
)
# Rows already kept for a key in one second, by this or another process.
KEPT_IN_SECOND_SQL = (
    "SELECT count(*) FROM rejections WHERE key_id = ? AND received_at >= ? AND received_at < ?"
)


def count_params(
    counts: Counter[CountKey], unkept: Counter[CountKey], shard: int
) -> list[tuple[Any, ...]]:
    """Upsert parameters in one order for every process (no deadlock between two writers)."""
    keys = sorted(set(counts) | set(unkept))
    return [
        (k.partner_id, k.minute, k.route, k.outcome, k.key_id, shard, counts[k], unkept[k])
        for k in keys
    ]


def rejection_params(row: RejectionRow, time_param: Any) -> tuple[Any, ...]:
    return (
        time_param(row.received_at),
        row.partner_id,
        row.key_id,
        row.route,
        row.status,
        row.code,
        row.message,
        row.details,
        row.request_id,
        row.body,
    )


def by_key_second(rows: Iterable[RejectionRow]) -> dict[tuple[str, datetime], list[RejectionRow]]:
    groups: dict[tuple[str, datetime], list[RejectionRow]] = {}
    for row in rows:
        groups.setdefault((row.key_id, row.second()), []).append(row)
    return groups


def over_bound(
    rows: list[RejectionRow], already_kept: int
) -> tuple[list[RejectionRow], list[RejectionRow]]:
    """The rows of one key and second that fit under the bound, and those that do not."""
    room = max(0, KEPT_PER_KEY_PER_S - already_kept)
    return rows[:room], rows[room:]


def unkept_counts(dropped: Iterable[RejectionRow]) -> Iterator[CountKey]:
    for row in dropped:
        yield CountKey(row.partner_id, minute_of(row.received_at), row.route, row.code, row.key_id)


def second_bounds(second: datetime) -> tuple[datetime, datetime]:
    return second, second + timedelta(seconds=1)
