"""SqliteStore's writes through its group-commit writer: per-row answers in arrival order.

Contract: "N identical requests racing give exactly one ok", "A 204 or ok means the row is
committed". Every answer must be the one a plain INSERT ... ON CONFLICT DO NOTHING per row, in
arrival order, would give: for events however the writer merged them into multi-row
statements, for conversions (written row by row) across both unique keys and the click check.
"""

from __future__ import annotations

import asyncio
import fcntl
import os
import random
import sqlite3
import sys
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.unit.store.rows import NOW, click, conversion, event, run
from thrad_events.deadline import Deadline
from thrad_events.reports.query import Report, parse_report_query
from thrad_events.reports.sql import report_rows
from thrad_events.store.errors import StorageError
from thrad_events.store.records import InsertResult
from thrad_events.store.sqlite import SqliteStore
from thrad_events.store.sqlite_writes import (
    LOCK_HOLDER_SWITCH_S,
    ROWS_PER_STATEMENT,
    WriteLock,
)

INSERTED, DUPLICATE = InsertResult.INSERTED, InsertResult.DUPLICATE


@pytest.fixture
def store(tmp_path: Path) -> Iterator[SqliteStore]:
    store = SqliteStore(f"sqlite:///{tmp_path / 'events.db'}", write_batch_max_rows=512)
    store.migrate()
    yield store
    store.close_sync()


def stored_ids(store: SqliteStore) -> list[str | None]:
    return [row["event_id"] for row in store.export_rows("events", None)]


def test_racing_duplicates_give_exactly_one_inserted_the_first_in_arrival_order(
    store: SqliteStore,
) -> None:
    async def work() -> list[InsertResult]:
        return list(
            await asyncio.gather(*(store.insert_event(event(f"e{i % 3}")) for i in range(30)))
        )

    answers = run(store, work)
    assert answers[:3] == [INSERTED] * 3
    assert answers[3:] == [DUPLICATE] * 27
    assert sorted(stored_ids(store)) == ["e0", "e1", "e2"]  # type: ignore[type-var]


def test_the_same_event_id_of_another_partner_is_another_event(store: SqliteStore) -> None:
    answers = run(store, lambda: store.insert_events([event("x", "ptn_a"), event("x", "ptn_b")]))
    assert answers == [INSERTED, INSERTED]


def test_events_without_event_id_are_never_deduplicated(
    store: SqliteStore, caplog: pytest.LogCaptureFixture
) -> None:
    async def work() -> tuple[list[Any], list[Any]]:
        first = await store.insert_events([event(None), event(None), event("x")])
        # With a duplicate in the statement, the new rows are read back: keys without an
        # event_id are alike there, and must still each count as a row.
        second = await store.insert_events([event(None), event("x"), event(None)])
        return first, second

    assert run(store, work) == ([INSERTED] * 3, [INSERTED, DUPLICATE, INSERTED])
    assert len(stored_ids(store)) == 5
    assert not [r for r in caplog.records if r.levelname == "ERROR"]


def test_rows_already_stored_are_told_apart_from_new_ones_in_one_statement(
    store: SqliteStore,
) -> None:
    async def work() -> tuple[list[Any], list[Any]]:
        first = await store.insert_events([event("a"), event("b"), event("a")])
        # Mixed: stored before (b, d's twin later), new (c, e), no id (None), in one batch.
        second = await store.insert_events(
            [event("c"), event("b"), event(None), event("e"), event("a"), event("c")]
        )
        return first, second

    first, second = run(store, work)
    assert first == [INSERTED, INSERTED, DUPLICATE]
    assert second == [INSERTED, DUPLICATE, INSERTED, INSERTED, DUPLICATE, DUPLICATE]
    assert sorted(map(str, stored_ids(store))) == ["None", "a", "b", "c", "e"]


def test_single_and_batch_inserts_queued_together_are_answered_in_arrival_order(
    store: SqliteStore,
) -> None:
    async def work() -> list[Any]:
        return list(
            await asyncio.gather(
                store.insert_event(event("s1")),
                store.insert_events([event("s1"), event("b1"), event("b2")]),
                store.insert_event(event("b2")),
                store.insert_event(event("s2")),
            )
        )

    answers = run(store, work)
    assert answers == [INSERTED, [DUPLICATE, INSERTED, INSERTED], DUPLICATE, INSERTED]


def test_more_rows_than_one_statement_takes(store: SqliteStore) -> None:
    count = ROWS_PER_STATEMENT * 2 + 7
    rows = [event(f"n{i}") for i in range(count)]

    async def work() -> tuple[list[Any], list[Any]]:
        first = await store.insert_events(rows[: count // 2])
        return first, await store.insert_events(rows)

    first, second = run(store, work)
    assert first == [INSERTED] * (count // 2)
    assert second == [DUPLICATE] * (count // 2) + [INSERTED] * (count - count // 2)
    assert len(stored_ids(store)) == count


@pytest.mark.parametrize(
    "bad",
    [
        {"event_name": None},  # NOT NULL: SQLite refuses the row
        {"timestamp": 2**70},  # wider than 64 bits: refused while binding
    ],
)
def test_a_row_sqlite_refuses_fails_alone(store: SqliteStore, bad: dict[str, Any]) -> None:
    answers = run(
        store,
        lambda: store.insert_events([event("ok-1"), event("bad", **bad), event("ok-2")]),
    )
    assert answers[0] is INSERTED
    assert isinstance(answers[1], StorageError)
    assert answers[2] is INSERTED
    assert sorted(stored_ids(store)) == ["ok-1", "ok-2"]  # type: ignore[type-var]


def test_a_refused_row_in_a_later_statement_leaves_earlier_rows_and_its_repeat_stored(
    store: SqliteStore,
) -> None:
    """The first statement's rows stay inserted; the refused row is not stored, so a later row
    with its event_id, planned as its duplicate, is stored after all."""
    rows = [event(f"n{i}") for i in range(ROWS_PER_STATEMENT + 20)]
    rows[ROWS_PER_STATEMENT + 5] = event("again", event_name=None)
    rows[ROWS_PER_STATEMENT + 10] = event("again")

    answers = run(store, lambda: store.insert_events(rows))
    refused = ROWS_PER_STATEMENT + 5
    assert answers[:refused] == [INSERTED] * refused
    assert isinstance(answers[refused], StorageError)
    assert answers[refused + 1 :] == [INSERTED] * (len(rows) - refused - 1)
    assert len(stored_ids(store)) == len(rows) - 1


def test_merged_answers_match_one_insert_per_row(store: SqliteStore, tmp_path: Path) -> None:
    """A random mix of ids, partners and repeats: merged answers equal the row-by-row ones."""
    rng = random.Random(7)
    batches = [
        [
            event(rng.choice([None, *(f"id{n}" for n in range(40))]), rng.choice(["p1", "p2"]))
            for _ in range(rng.randint(1, 60))
        ]
        for _ in range(20)
    ]

    async def work() -> list[Any]:
        return list(await asyncio.gather(*(store.insert_events(rows) for rows in batches)))

    merged = run(store, work)
    reference = sqlite3.connect(tmp_path / "reference.db")
    reference.execute(
        "CREATE TABLE events (partner_id TEXT, tag_id TEXT, event_id TEXT, "
        "UNIQUE (partner_id, tag_id, event_id))"
    )
    expected = [
        [
            INSERTED
            if reference.execute(
                "INSERT INTO events VALUES (?, ?, ?) ON CONFLICT DO NOTHING",
                (row["partner_id"], row["tag_id"], row["event_id"]),
            ).rowcount
            == 1
            else DUPLICATE
            for row in rows
        ]
        for rows in batches
    ]
    assert merged == expected


@pytest.mark.parametrize(("every_s", "checkpointed"), [(0.05, True), (3600.0, False)])
def test_the_wal_is_checkpointed_by_its_own_thread_not_by_commits(
    tmp_path: Path, every_s: float, checkpointed: bool
) -> None:
    """Rows reach the database file (from the WAL) without a commit doing it: with the
    checkpoint thread idle (an hour's interval), the same writes leave the file as it was."""
    path = tmp_path / "events.db"
    store = SqliteStore(f"sqlite:///{path}", checkpoint_every_s=every_s)
    store.migrate()

    async def work() -> tuple[int, int]:
        before = path.stat().st_size
        for start in range(0, 2000, 500):
            await store.insert_events([event(f"e{i}") for i in range(start, start + 500)])
        await asyncio.sleep(0.5)
        return before, path.stat().st_size

    before, after = run(store, work)
    store.close_sync()
    assert (after > before) is checkpointed
    assert len(stored_ids(store)) == 2000


CLICK_NOT_FOUND = InsertResult.CLICK_NOT_FOUND


def conversion_of(
    click_id: str,
    dedupe_key: str | None,
    order_id: str | None = None,
    *,
    partner: str = "ptn_test",
    event_type: str = "purchase_completed",
) -> dict[str, Any]:
    return {
        **conversion(click_id, dedupe_key, order_id),
        "partner_id": partner,
        "event_type": event_type,
    }


def test_a_conversion_that_meets_a_stored_one_does_not_block_a_later_row(
    store: SqliteStore,
) -> None:
    """Two unique keys: A repeats the stored row's dedupe key (so A is not stored); B shares
    only A's order key, and A was not stored, so B is."""

    async def work() -> tuple[Any, Any]:
        await store.insert_click(click("c1"))
        first = await store.insert_conversion(conversion_of("c1", "k-stored", "o-stored"))
        second = await store.insert_conversions(
            [
                conversion_of("c1", "k-stored", "o-new"),  # A: its dedupe key is stored
                conversion_of("c1", "k-other", "o-new"),  # B: shares only A's order key
                conversion_of("c1", "k-third", "o-new"),  # C: B was stored: duplicate order
                conversion_of("c1", "k-fourth", "o-stored"),  # the stored row's order key
                conversion_of("unknown", "k-fifth"),
            ]
        )
        return first, second

    first, second = run(store, work)
    assert first is INSERTED
    assert second == [DUPLICATE, INSERTED, DUPLICATE, DUPLICATE, CLICK_NOT_FOUND]
    stored = sorted(row["dedupe_key"] for row in store.export_rows("conversions", None))
    assert stored == ["k-other", "k-stored"]


def test_a_click_queued_with_its_conversion_is_found(store: SqliteStore) -> None:
    async def work() -> list[Any]:
        return list(
            await asyncio.gather(
                store.insert_click(click("fresh")),
                store.insert_conversion(conversion_of("fresh", "k1")),
                store.insert_conversion(conversion_of("fresh", "k1")),
            )
        )

    assert run(store, work) == [INSERTED, INSERTED, DUPLICATE]


def test_queued_conversions_are_answered_as_one_insert_per_row_in_arrival_order(
    store: SqliteStore, tmp_path: Path
) -> None:
    """Random partners, clicks (one unknown), dedupe keys and order ids, some NULL, some rows
    already stored, singles and batches queued together: the writer's answers equal those of
    the same rows inserted one by one, in order, into a second database."""
    from thrad_events.fields import CONVERSIONS
    from thrad_events.store.sqlite_values import row_values
    from thrad_events.store.sqlite_writes import insert_conversion

    rng = random.Random(11)
    clicks = ["c0", "c1", "c2", "c3"]

    def random_row() -> dict[str, Any]:
        return conversion_of(
            rng.choice([*clicks, "nowhere"]),
            rng.choice([None, None, *(f"k{n}" for n in range(12))]),
            rng.choice([None, *(f"o{n}" for n in range(6))]),
            partner=rng.choice(["p1", "p2"]),
            event_type=rng.choice(["purchase_completed", "lead_created"]),
        )

    earlier = [random_row() for _ in range(40)]
    batches = [[random_row() for _ in range(rng.randint(1, 50))] for _ in range(25)]

    async def work() -> list[Any]:
        for click_id in clicks:
            await store.insert_click(click(click_id))
        await store.insert_conversions(earlier)
        singles = [store.insert_conversion(rows[0]) for rows in batches[:5]]
        many = [store.insert_conversions(rows) for rows in batches[5:]]
        answers = await asyncio.gather(*singles, *many)
        return [[answer] for answer in answers[:5]] + list(answers[5:])

    merged = run(store, work)

    reference = SqliteStore(f"sqlite:///{tmp_path / 'reference.db'}")
    reference.migrate()
    connection = reference._connect()
    connection.execute("BEGIN")
    for click_id in clicks:
        connection.execute(
            "INSERT INTO clicks (click_id, received_at, expires_at, landing_url) "
            "VALUES (?, '2026-02-19T18:00:00.000000Z', 1771524000, 'https://x.example/')",
            (click_id,),
        )
    for row in earlier:
        insert_conversion(connection, row_values(row, CONVERSIONS))
    expected = [
        [insert_conversion(connection, row_values(row, CONVERSIONS)) for row in rows]
        for rows in [[rows[0]] for rows in batches[:5]] + batches[5:]
    ]
    connection.execute("COMMIT")
    connection.close()
    assert merged == expected
    assert {DUPLICATE, INSERTED, CLICK_NOT_FOUND} <= {a for answers in merged for a in answers}


def test_administrative_writes_wait_for_the_write_lock_of_other_processes(
    store: SqliteStore,
) -> None:
    """Keys, partners and settings are written under the lock the writers commit under, so
    they never meet a commit in SQLite's busy handler."""
    store.admin(lambda session: session.add_partner("ptn_1", "acme", NOW))
    # Another process's writer holds the lock: a file description of its own.
    fd = os.open(f"{store.path}.write-lock", os.O_RDWR | os.O_CREAT, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    done = threading.Event()

    def add() -> None:
        store.admin(
            lambda session: session.add_key(
                key_id="key_1",
                partner_id="ptn_1",
                label="l",
                key_hash="h" * 64,
                key_prefix="thr_abcd",
                created_at=NOW,
                expires_at=None,
                rate_limit=None,
            )
        )
        done.set()

    thread = threading.Thread(target=add)
    try:
        thread.start()
        assert not done.wait(0.3), "the key was written while another process held the lock"
    finally:
        fcntl.flock(fd, fcntl.LOCK_UN)
        os.close(fd)
    thread.join(5)
    assert done.is_set()
    assert [key.key_id for key in store.list_keys()] == ["key_1"]


def test_the_write_lock_holder_gets_the_gil_back_sooner_and_the_interval_is_restored(
    tmp_path: Path,
) -> None:
    lock = WriteLock(tmp_path / "events.db")
    before = sys.getswitchinterval()
    assert before > LOCK_HOLDER_SWITCH_S
    try:
        with lock.held():
            assert sys.getswitchinterval() == pytest.approx(LOCK_HOLDER_SWITCH_S)
        assert sys.getswitchinterval() == before
        with pytest.raises(RuntimeError), lock.held():
            raise RuntimeError("the write failed")
        assert sys.getswitchinterval() == before
    finally:
        lock.close()
        sys.setswitchinterval(before)


def test_locks_of_two_stores_held_by_two_threads_leave_the_interval_as_it_was(
    tmp_path: Path,
) -> None:
    """Held and released interleaved (A in, B in, A out, B out): short until both are out."""
    first, second = WriteLock(tmp_path / "a.db"), WriteLock(tmp_path / "b.db")
    before = sys.getswitchinterval()
    first_in, second_in, first_out = threading.Event(), threading.Event(), threading.Event()
    seen: list[float] = []

    def hold_second() -> None:
        first_in.wait(5)
        with second.held():
            second_in.set()
            first_out.wait(5)
            seen.append(sys.getswitchinterval())

    thread = threading.Thread(target=hold_second)
    thread.start()
    try:
        with first.held():
            first_in.set()
            assert second_in.wait(5)
        first_out.set()
        thread.join(5)
        assert seen == [pytest.approx(LOCK_HOLDER_SWITCH_S)]  # the second still held its lock
        assert sys.getswitchinterval() == before
    finally:
        first_out.set()
        thread.join(5)
        first.close()
        second.close()
        sys.setswitchinterval(before)


def test_an_event_time_range_places_conversion_times_with_and_without_a_fraction_right(
    store: SqliteStore,
) -> None:
    """A conversion_time given as text is stored as it is, with or without a fraction
    ("...:55Z", "...:55.250000Z", as versions before SQLite's migration 0010 wrote it); a
    report's range (here until = now, with a fraction, as by default) must place both forms by
    their instant: a conversion in the current second is in today's report."""
    times = {
        "k-whole": "2026-02-19T18:00:55Z",
        "k-fraction": "2026-02-19T18:00:55.250000Z",
        "k-next-second": "2026-02-19T18:00:56.100000Z",
        "k-before": "2026-02-19T17:59:59Z",
    }

    async def work() -> None:
        await store.insert_click(click("c1"))
        for key, moment in times.items():
            row = {**conversion_of("c1", key), "conversion_time": moment}
            assert await store.insert_conversion(row) is InsertResult.INSERTED

    run(store, work)
    query = parse_report_query(
        Report.CONVERSIONS,
        [("since", "2026-02-19T18:00:00Z"), ("until", "2026-02-19T18:00:55.700Z")],
        partner_id=None,
        now=datetime(2026, 2, 20, tzinfo=UTC),
    )
    [row] = report_rows(store, query, Deadline.after(10))
    # Event-time bounds are whole seconds, rounded up: until 55.7 covers all of second 55.
    assert row["conversions"] == 2
