"""The storage interface every backend implements (the Store protocol), with the key record,
write results, storage errors and time helpers it speaks in; the columns are in columns.py."""

from __future__ import annotations

import enum
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol, TypeVar

from thrad_events.store.export_keyset import Keyset
from thrad_events.store.test_rows import PURGE_BATCH_ROWS

if TYPE_CHECKING:
    from thrad_events.reports.deadline import Deadline
    from thrad_events.reports.query import AnyReportQuery
    from thrad_events.store.admin_sql import AdminSession
    from thrad_events.store.delivery import DeliveryBatch
    from thrad_events.store.delivery_reads import DeliveryQuery, RejectionsPage, RejectionsQuery
    from thrad_events.store.tags import TagTable


Row = Mapping[str, Any]
T = TypeVar("T")


class InsertResult(enum.Enum):
    INSERTED = "inserted"
    DUPLICATE = "duplicate"
    CLICK_NOT_FOUND = "click_not_found"


@dataclass(frozen=True, slots=True)
class ApiKeyRecord:
    key_id: str
    partner_id: str
    partner_name: str
    label: str
    key_hash: str
    key_prefix: str
    created_at: str
    expires_at: str | None
    revoked_at: str | None
    last_used_at: str | None
    rate_limit: int | None
    # A test key (secret thr_test_...): its rows are stored flagged test (store/test_rows.py).
    test: bool = False

    def status(self, now: datetime | None = None) -> str:
        """`revoked`, `expired` or `active`: what a request with this key meets at `now`
        (the current time when not given, read only for a key that can expire)."""
        if self.revoked_at is not None:
            return "revoked"
        if self.expires_at is not None and self.expires_at <= format_time(now or utcnow()):
            return "expired"
        return "active"


class StorageError(Exception):
    """The store could not answer (unreachable, locked beyond its timeout, saturated)."""


# One row's answer in a many-row write: how it was stored, or why it alone failed.
RowResult = InsertResult | StorageError


class Store(Protocol):
    """What the service needs from a database. Async methods serve requests; the rest the CLI."""

    async def start(self) -> None: ...

    async def close(self) -> None: ...

    async def insert_event(self, row: Row) -> InsertResult: ...

    async def insert_conversion(self, row: Row) -> InsertResult: ...

    async def insert_click(self, row: Row) -> InsertResult: ...

    async def insert_events(self, rows: Sequence[Row]) -> list[RowResult]:
        """Many rows in one commit, one answer per row in order (a failed row fails alone)."""
        ...

    async def insert_conversions(self, rows: Sequence[Row]) -> list[RowResult]: ...

    async def find_key(self, key_hash: str) -> ApiKeyRecord | None: ...

    async def click_is_test(self, click_id: str) -> bool | None:
        """Whether a stored click is a test click; None when there is no such click."""
        ...

    def touch_key(self, key_id: str, when: datetime) -> None: ...

    async def ping(self) -> bool: ...

    def queue_depth(self) -> int: ...

    def report(self, query: AnyReportQuery, deadline: Deadline) -> list[dict[str, Any]]:
        """One row per group, JSON-ready (reports/query.py says what a query may ask).

        Blocking: runs in the calling thread (a report thread, or the CLI's) on that thread's
        own connection, and raises ReportTimedOut once `deadline` has passed.
        """
        ...

    # Delivery accounting (store/delivery.py): written through the group commit; read and
    # pruned blocking, on the calling thread.
    async def write_delivery(self, batch: DeliveryBatch) -> int: ...

    def rejections(self, query: RejectionsQuery) -> RejectionsPage: ...

    def delivery(self, query: DeliveryQuery) -> list[dict[str, Any]]: ...

    def prune_delivery(self, rejections_before: datetime, counts_before: datetime) -> int: ...

    # Administration: called by the CLI and at start-up, never on the request path.
    def migrate(self) -> list[int]: ...

    def list_keys(self) -> list[ApiKeyRecord]: ...

    def admin(self, work: Callable[[AdminSession], T], *, write: bool = True) -> T:
        """`work` in one transaction of its own (under the write lock when it writes): the
        operator's actions and their audit entries commit together or not at all. Blocking."""
        ...

    def setting(self, name: str, default: str) -> str:
        """The stored value of a setting, storing `default` first if there is none."""
        ...

    def export_rows(
        self,
        table: str,
        since: datetime | None,
        until: datetime | None = None,
        partner_id: str | None = None,
        limit: int | None = None,
        start: Keyset | None = None,
        include_test: bool = False,
    ) -> Iterator[dict[str, Any]]:
        """A table's rows in the order received, received in [since, until), of one partner
        (events and conversions), from the row at `start` on (store/export_keyset.py), at most
        `limit`, test rows only when `include_test`; streamed, never loaded whole. Blocking:
        runs on the calling thread."""
        ...

    def export_next_start(
        self,
        table: str,
        since: datetime | None,
        until: datetime | None,
        partner_id: str | None,
        start: Keyset | None,
        limit: int,
        include_test: bool = False,
    ) -> Keyset | None:
        """Where the export page of `limit` rows from `start` ends: the next row's key, or
        None when no row follows it. Blocking, like export_rows."""
        ...

    def purge_test_rows(
        self, before: datetime, batch_rows: int = PURGE_BATCH_ROWS
    ) -> dict[str, int]:
        """Delete the test rows received before `before`, a short transaction per batch of
        `batch_rows`; the rows deleted per table (store/test_rows.py)."""
        ...

    def tags(self) -> TagTable:
        """The browser Tag registry (store/tags.py); blocking, like the administration."""
        ...

    def close_sync(self) -> None: ...


def format_time(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601, so stored times sort as text."""
    if moment.tzinfo is not UTC:
        moment = moment.astimezone(UTC)
    if moment.year < 1000:
        # strftime's %Y does not pad years below 1000 (isoformat does): kept as it was stored.
        return moment.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    # The same text as strftime, in a third less time (every stored row has one).
    return moment.isoformat(timespec="microseconds")[:26] + "Z"


def utcnow() -> datetime:
    return datetime.now(UTC)
