"""PostgresStore's delivery counts against the real PostgreSQL: stored and duplicate rows counted
in the rows' own transaction, also when a row PostgreSQL refuses sends the batch row by row."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta

import pytest

from tests.postgres import postgres_schema
from tests.unit.store.rows import NOW, event, run
from thrad_events.store.delivery import current_route
from thrad_events.store.delivery_reads import DeliveryQuery
from thrad_events.store.errors import StorageError
from thrad_events.store.postgres import PostgresStore
from thrad_events.store.records import InsertResult

RANGE = DeliveryQuery(NOW - timedelta(hours=1), NOW + timedelta(hours=1), None, ("route",))


@pytest.fixture
def store() -> Iterator[PostgresStore]:
    with postgres_schema() as url:
        store = PostgresStore(url, write_batch_max_rows=64, write_queue_max_rows=1000)
        store.migrate()
        yield store
        store.close_sync()


def test_stored_and_duplicate_rows_are_counted_with_the_rows(store: PostgresStore) -> None:
    async def work() -> list[object]:
        current_route.set("collect_batch")
        first = await store.insert_events([event("a"), event("b"), event("a")])
        current_route.set(None)  # not a request's write: not counted
        await store.insert_event(event("c"))
        return list(first)

    assert run(store, work) == [
        InsertResult.INSERTED,
        InsertResult.INSERTED,
        InsertResult.DUPLICATE,
    ]
    [row] = store.delivery(RANGE)
    assert (row["route"], row["stored"], row["duplicate"]) == ("collect_batch", 2, 1)


def test_a_refused_row_is_not_counted_and_the_others_are(store: PostgresStore) -> None:
    async def work() -> list[object]:
        current_route.set("collect_batch")
        return list(
            await store.insert_events(
                [event("ok-1"), event("too-big", timestamp=2**70), event("ok-2")]
            )
        )

    answers = run(store, work)
    assert isinstance(answers[1], StorageError)
    [row] = store.delivery(RANGE)
    assert (row["stored"], row["duplicate"], row["received"]) == (2, 0, 2)
