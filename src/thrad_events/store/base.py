"""The storage interface every backend implements (the Store protocol), with the key record,
write results, storage errors and time helpers it speaks in; the columns are in columns.py."""

from __future__ import annotations

import enum
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Protocol

if TYPE_CHECKING:
    from thrad_events.reports.deadline import Deadline
    from thrad_events.reports.query import AnyReportQuery
    from thrad_events.store.delivery import DeliveryBatch
    from thrad_events.store.delivery_reads import DeliveryQuery, RejectionsPage, RejectionsQuery


Row = Mapping[str, Any]


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

    def ensure_partner(self, name: str) -> str: ...

    def add_key(
        self,
        *,
        key_id: str,
        partner_id: str,
        label: str,
        key_hash: str,
        key_prefix: str,
        created_at: datetime,
        expires_at: datetime | None,
        rate_limit: int | None,
    ) -> None: ...

    def list_keys(self) -> list[ApiKeyRecord]: ...

    def revoke_key(self, key_id: str, when: datetime) -> bool: ...

    def set_rate_limit(self, key_id: str, per_s: int | None) -> bool: ...

    def count_keys(self) -> int: ...

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
    ) -> Iterator[dict[str, Any]]:
        """A table's rows in the order received, received in [since, until), of one partner
        (events and conversions), at most `limit`; streamed, never loaded whole."""
        ...

    def close_sync(self) -> None: ...


def format_time(moment: datetime) -> str:
    """Fixed-width UTC ISO-8601, so stored times sort as text."""
    return moment.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


def utcnow() -> datetime:
    return datetime.now(UTC)
