"""ingest/delivery.py against a real SQLite store: what is counted, what is kept, the flood bound,
and the stored counts the writer adds in the rows' own transaction."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from tests.unit.store.rows import NOW, PARTNER, event, run
from thrad_events.errors import (
    InvalidJson,
    RateLimited,
    Unauthorized,
    Unavailable,
    ValidationFailed,
)
from thrad_events.ingest import delivery
from thrad_events.ingest.delivery import DeliveryRecorder
from thrad_events.store.delivery import DeliveryBatch, current_route, minute_after
from thrad_events.store.delivery_reads import DeliveryQuery, RejectionsQuery
from thrad_events.store.errors import StorageError
from thrad_events.store.sqlite import SqliteStore

WHEN = datetime(2026, 2, 19, 18, 0, 0, 500000, tzinfo=UTC)
RANGE = {"since": WHEN - timedelta(days=1), "until": WHEN + timedelta(days=1)}


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(f"sqlite:///{tmp_path / 'events.db'}")
    store.migrate()
    yield store
    store.close_sync()


def recorder(store: SqliteStore) -> DeliveryRecorder:
    return DeliveryRecorder(
        store, retention_days=7, counted_routes=frozenset({"collect"}), clock=lambda: WHEN
    )


def refusal(error: Exception, key_id: str = "key_a") -> Exception:
    error.partner_id, error.key_id = PARTNER, key_id  # type: ignore[attr-defined]
    return error


def delivered(store: SqliteStore) -> list[dict[str, object]]:
    return store.delivery(DeliveryQuery(partner_id=None, group_by=("route",), **RANGE))


def test_past_100_a_second_per_key_refusals_are_counted_but_not_kept(store: SqliteStore) -> None:
    record = recorder(store)
    for _ in range(150):
        record.refused("collect", 400, refusal(InvalidJson("bad"), "key_a"), "rid")
    record.refused("collect", 400, refusal(InvalidJson("bad"), "key_b"), "rid")
    run(store, lambda: record.flush(force=True))
    page = store.rejections(RejectionsQuery(partner_id=PARTNER, limit=1000, **RANGE))
    kept = [row["key_id"] for row in page.rejections]
    assert kept.count("key_a") == 100
    assert kept.count("key_b") == 1
    assert page.not_kept == 50
    assert delivered(store)[0]["rejected"] == {"invalid_json": 151}


def test_the_bound_holds_for_what_another_process_already_kept(store: SqliteStore) -> None:
    # Two recorders stand for two worker processes writing the same key's second.
    first, second = recorder(store), recorder(store)
    for _ in range(80):
        first.refused("collect", 422, refusal(ValidationFailed("v")), "rid")
        second.refused("collect", 422, refusal(ValidationFailed("v")), "rid")

    async def both() -> None:
        await first.flush(force=True)
        await second.flush(force=True)

    run(store, both)
    page = store.rejections(RejectionsQuery(partner_id=None, limit=1000, **RANGE))
    assert len(page.rejections) == 100
    assert page.not_kept == 60


def test_429s_are_counted_not_kept_and_5xx_and_unknown_keys_neither(store: SqliteStore) -> None:
    record = recorder(store)
    record.refused("collect", 429, refusal(RateLimited("slow down", 1, 5)), "rid")
    record.refused("collect", 503, refusal(Unavailable("down")), "rid")
    record.refused("collect", 400, InvalidJson("no key known"), "rid")
    # A revoked or expired key is named on its 401 (for the log line), but is no valid key.
    record.refused("collect", 401, refusal(Unauthorized("API key has been revoked")), "rid")
    run(store, lambda: record.flush(force=True))
    page = store.rejections(RejectionsQuery(partner_id=None, limit=10, **RANGE))
    assert page.rejections == []
    assert [(r["key_id"], r["count"]) for r in page.rate_limited] == [("key_a", 1)]
    assert delivered(store)[0]["rate_limited"] == 1
    assert delivered(store)[0]["received"] == 1


def test_a_failed_hand_over_is_tried_again_and_what_overflows_is_counted_not_kept(
    store: SqliteStore, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(delivery, "MAX_PENDING_ROWS", 3)
    record = recorder(store)
    for key_id in ("key_a", "key_b"):
        record.refused("collect", 422, refusal(ValidationFailed("v"), key_id), "rid")
    write = store.write_delivery

    async def failing(batch: DeliveryBatch) -> int:
        # Two more refusals arrive while the hand-over is under way; then storage fails.
        for key_id in ("key_c", "key_d"):
            record.refused("collect", 400, refusal(InvalidJson("bad"), key_id), "rid")
        raise StorageError("database is locked")

    monkeypatch.setattr(store, "write_delivery", failing)
    assert run(store, lambda: record.flush(force=True)) is False
    monkeypatch.setattr(store, "write_delivery", write)
    assert run(store, lambda: record.flush(force=True)) is True
    page = store.rejections(RejectionsQuery(partner_id=None, limit=10, **RANGE))
    # The rows taken first go back first; the newest past the buffer's bound are not kept.
    assert sorted(row["key_id"] for row in page.rejections) == ["key_a", "key_b", "key_c"]
    assert page.not_kept == 1
    assert delivered(store)[0]["rejected"] == {"invalid_json": 2, "validation_error": 2}


def test_a_refusal_on_a_route_not_counted_is_kept_only(store: SqliteStore) -> None:
    record = recorder(store)
    record.refused("reports_events", 422, refusal(ValidationFailed("group_by")), "rid")
    run(store, lambda: record.flush(force=True))
    page = store.rejections(RejectionsQuery(partner_id=None, limit=10, **RANGE))
    assert [row["route"] for row in page.rejections] == ["reports_events"]
    assert delivered(store) == []


def test_the_writer_counts_stored_and_duplicate_rows_under_the_requests_route(
    store: SqliteStore,
) -> None:
    async def work() -> None:
        current_route.set("collect")
        await store.insert_event(event("e1"))
        await store.insert_event(event("e1"))
        await store.insert_events([event("e2"), event("e1")])
        current_route.set(None)  # a write outside a request is not counted
        await store.insert_event(event("e3"))

    run(store, work)
    since, until = NOW - timedelta(hours=1), NOW + timedelta(hours=1)
    [row] = store.delivery(DeliveryQuery(since, until, None, ("route",)))
    assert (row["route"], row["stored"], row["duplicate"], row["received"]) == ("collect", 2, 2, 4)


def test_a_range_counts_the_minute_its_end_falls_in() -> None:
    assert minute_after(datetime(2026, 2, 19, 18, 0, 0, tzinfo=UTC)) == "2026-02-19T18:00"
    assert minute_after(datetime(2026, 2, 19, 18, 0, 1, tzinfo=UTC)) == "2026-02-19T18:01"
    assert minute_after(datetime.max.replace(tzinfo=UTC)) == "9999-12-31T23:59~"
