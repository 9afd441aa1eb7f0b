"""The storage interface every backend implements (the Store protocol). It alone names the other
store modules' types; what it answers in is records.py's and errors.py's, the columns are in
fields.py, times are instants.py's."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Sequence
from datetime import datetime
from typing import Any, Protocol, TypeVar

from thrad_events.deadline import Deadline
from thrad_events.store.admin_sql import AdminSession
from thrad_events.store.delivery import DeliveryBatch
from thrad_events.store.delivery_reads import DeliveryQuery, RejectionsPage, RejectionsQuery
from thrad_events.store.dialect import SqlDialect
from thrad_events.store.export_keyset import Keyset
from thrad_events.store.records import ApiKeyRecord, InsertResult, Row, RowResult
from thrad_events.store.tags import TagTable
from thrad_events.store.test_rows import PURGE_BATCH_ROWS

T = TypeVar("T")


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

    @property
    def dialect(self) -> SqlDialect:
        """The SQL this store speaks (store/dialect.py)."""
        ...

    def read(
        self, statement: str, args: Sequence[Any], deadline: Deadline
    ) -> Sequence[Sequence[Any]]:
        """The raw rows of one read-only statement (a report's, reports/sql.py), in this
        store's dialect with its bound `args`.

        Blocking: runs in the calling thread (a report thread, or the CLI's) on that thread's
        own connection; the database interrupts the statement once `deadline` has passed, and
        it raises ReportTimedOut then, StorageError when the store cannot answer.
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
