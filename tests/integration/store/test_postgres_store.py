"""PostgresStore and its writer against the real PostgreSQL (hence not a unit test): per-row
answers from shared commits.

Contract: "N identical requests racing give exactly one ok", "conversion click_id unknown: 404",
"Money is exact", "A 204 or ok means the row is committed".
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Iterator
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import psycopg
import pytest

from tests.postgres import postgres_schema
from tests.unit.store.rows import NOW, click, conversion, event, run
from thrad_events.fields import TABLES, Kind, kind_of
from thrad_events.instants import format_time
from thrad_events.store.admin_sql import AdminSession
from thrad_events.store.errors import StorageError
from thrad_events.store.postgres import PostgresStore
from thrad_events.store.postgres_connections import redacted
from thrad_events.store.records import InsertResult
from thrad_events.store.writer import QueueFull


@pytest.fixture
def url() -> Iterator[str]:
    with postgres_schema() as schema_url:
        yield schema_url


@pytest.fixture
def store(url: str) -> Iterator[PostgresStore]:
    store = PostgresStore(url, write_batch_max_rows=64, write_queue_max_rows=1000)
    store.migrate()
    yield store
    store.close_sync()


def test_racing_duplicates_in_one_batch_give_exactly_one_inserted(store: PostgresStore) -> None:
    async def work() -> list[InsertResult]:
        return list(
            await asyncio.gather(*(store.insert_event(event(f"e{i % 3}")) for i in range(30)))
        )

    answers = run(store, work)
    assert answers.count(InsertResult.INSERTED) == 3
    assert answers.count(InsertResult.DUPLICATE) == 27
    # The first of each id in arrival order is the one stored.
    assert answers[:3] == [InsertResult.INSERTED] * 3
    assert len(list(store.export_rows("events", None))) == 3


def test_events_without_event_id_are_never_deduplicated(store: PostgresStore) -> None:
    answers = run(store, lambda: store.insert_events([event(None), event(None), event("x")]))
    assert answers == [InsertResult.INSERTED] * 3


def test_batch_api_answers_each_row_across_batches(store: PostgresStore) -> None:
    async def work() -> tuple[list[Any], list[Any]]:
        first = await store.insert_events([event("a"), event("b"), event("a")])
        second = await store.insert_events([event("b"), event("c")])
        return first, second

    first, second = run(store, work)
    inserted, duplicate = InsertResult.INSERTED, InsertResult.DUPLICATE
    assert first == [inserted, inserted, duplicate]
    assert second == [duplicate, inserted]


def test_conversion_on_an_unknown_click_is_click_not_found(store: PostgresStore) -> None:
    async def work() -> list[InsertResult]:
        await store.insert_click(click("known"))
        return list(
            await asyncio.gather(
                store.insert_conversion(conversion("unknown", "d1")),
                store.insert_conversion(conversion("known", "d2")),
            )
        )

    assert run(store, work) == [InsertResult.CLICK_NOT_FOUND, InsertResult.INSERTED]
    assert [row["dedupe_key"] for row in store.export_rows("conversions", None)] == ["d2"]


def test_conversion_dedupe_by_key_and_by_order_inside_one_batch(store: PostgresStore) -> None:
    async def work() -> list[InsertResult]:
        await store.insert_click(click("c1"))
        return list(
            await asyncio.gather(
                store.insert_conversion(conversion("c1", "k1")),
                store.insert_conversion(conversion("c1", "k1")),  # same Idempotency-Key
                store.insert_conversion(conversion("c1", "k2", "o1")),
                store.insert_conversion(conversion("c1", "k3", "o1")),  # same order
                store.insert_conversion(conversion("c1", None)),  # no key at all: stored
                store.insert_conversion(conversion("c1", None)),
            )
        )

    inserted, duplicate = InsertResult.INSERTED, InsertResult.DUPLICATE
    assert run(store, work) == [inserted, duplicate, inserted, duplicate, inserted, inserted]


def test_a_click_and_its_conversion_in_one_batch(store: PostgresStore) -> None:
    async def work() -> list[InsertResult]:
        return list(
            await asyncio.gather(
                store.insert_click(click("c2")), store.insert_conversion(conversion("c2", "k"))
            )
        )

    assert run(store, work) == [InsertResult.INSERTED, InsertResult.INSERTED]


def test_a_row_postgres_refuses_fails_alone(store: PostgresStore) -> None:
    answers = run(
        store,
        lambda: store.insert_events(
            [event("ok-1"), event("too-big", timestamp=2**70), event("ok-2")]
        ),
    )
    assert answers[0] is InsertResult.INSERTED
    assert isinstance(answers[1], StorageError)
    assert answers[2] is InsertResult.INSERTED


def test_export_gives_sqlites_values(store: PostgresStore) -> None:
    async def work() -> None:
        await store.insert_click(click("c3"))
        await store.insert_conversion(conversion("c3", "k"))
        await store.insert_event(event("nul", page_url="a\x00b", params={"n": "x\x00y"}))

    run(store, work)
    [row] = store.export_rows("conversions", None)
    assert row["conversion_value"] == "49.990"
    assert row["received_at"] == format_time(NOW) == "2026-02-19T18:00:00.123456Z"
    assert row["conversion_time"] == "2026-02-19T18:00:00Z"
    assert row["params"] == {"price": Decimal("1.50")}
    [stored] = store.export_rows("events", None)
    # PostgreSQL text cannot hold NUL: the row is kept, the NUL marked.
    assert stored["page_url"] == "a\ufffdb"
    assert stored["params"] == {"n": "x\ufffdy"}
    assert list(store.export_rows("events", datetime(2030, 1, 1, tzinfo=UTC))) == []


def test_the_queue_is_bounded(url: str) -> None:
    store = PostgresStore(url, write_batch_max_rows=8, write_queue_max_rows=10)
    store.migrate()

    async def work() -> None:
        with pytest.raises(QueueFull):
            await store.insert_events([event(f"q{i}") for i in range(11)])

    run(store, work)
    store.close_sync()


def test_two_processes_migrating_together_apply_each_version_once(url: str) -> None:
    results: list[list[int]] = []
    stores = [PostgresStore(url) for _ in range(4)]
    threads = [threading.Thread(target=lambda s=s: results.append(s.migrate())) for s in stores]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)
    applied = sorted(version for result in results for version in result)
    with psycopg.connect(url) as conn:
        versions = [v for (v,) in conn.execute("SELECT version FROM schema_migrations")]
    assert len(results) == 4
    assert applied == sorted(versions)


def test_keys_settings_and_partners(store: PostgresStore) -> None:
    def add(session: AdminSession) -> None:
        assert session.add_partner("ptn_1", "acme", NOW)
        assert not session.add_partner("ptn_2", "acme", NOW), "one partner per name"
        session.add_key(
            key_id="key_1",
            partner_id="ptn_1",
            label="l",
            key_hash="h" * 64,
            key_prefix="thr_abcd",
            created_at=NOW,
            expires_at=None,
            rate_limit=5,
        )

    assert not store.admin(lambda session: session.has_keys(), write=False)
    store.admin(add)
    assert store.setting("click_secret", "first") == "first"
    assert store.setting("click_secret", "second") == "first"
    found = run(store, lambda: store.find_key("h" * 64))
    assert found is not None
    assert (found.partner_name, found.rate_limit) == ("acme", 5)
    assert found.created_at == format_time(NOW)
    assert store.admin(lambda session: session.revoke_key("key_1", NOW))
    assert not store.admin(lambda session: session.revoke_key("key_1", NOW)), "revoked once"
    assert not store.admin(lambda session: session.revoke_key("nope", NOW))
    assert store.list_keys()[0].revoked_at == format_time(NOW)
    assert store.admin(lambda session: session.has_keys(), write=False)


def test_unreachable_postgres_is_one_clear_error_without_the_password() -> None:
    store = PostgresStore("postgresql://thrad:s3cret@127.0.0.1:1/nowhere")
    with pytest.raises(StorageError) as caught:
        store.migrate()
    message = str(caught.value)
    assert "not reachable" in message
    assert "s3cret" not in message
    assert "\n" not in message
    assert (
        redacted("postgresql://u:p@h:5/d?password=q&x=1")
        == "postgresql://u:***@h:5/d?password=***&x=1"
    )


# The PostgreSQL types (udt_name) a kind may be stored in.
POSTGRES_TYPES = {
    Kind.TEXT: {"text"},
    Kind.INTEGER: {"int8", "int2"},  # ua_is_bot is a smallint 0/1
    Kind.REAL: {"float8"},
    Kind.FLAG: {"bool"},
    Kind.JSON: {"jsonb"},
    Kind.DECIMAL: {"numeric"},
    Kind.INSTANT: {"timestamptz"},
    Kind.SENT_INSTANT: {"timestamptz"},
}


def test_the_migrations_make_exactly_the_defined_columns_of_their_kinds(url: str) -> None:
    """fields.py's tables are the schema: a column added there needs a migration."""
    store = PostgresStore(url)
    store.migrate()
    with psycopg.connect(url) as conn:
        found = {
            (table, column): udt
            for table, column, udt in conn.execute(
                "SELECT table_name, column_name, udt_name FROM information_schema.columns "
                "WHERE table_schema = current_schema()"
            )
        }
    missing = [(t, c) for t, table in TABLES.items() for c in table.columns if (t, c) not in found]
    assert missing == [], "add these columns to migrations/postgres/"
    row_ids = {"events": {"id"}, "conversions": {"id"}, "clicks": set()}
    for name, table in TABLES.items():
        stored = {column for t, column in found if t == name} - row_ids[name]
        assert stored == set(table.columns), f"{name}: a column no field defines"
        wrong = {
            column: found[(name, column)]
            for column in table.columns
            if found[(name, column)] not in POSTGRES_TYPES[kind_of(column)]
        }
        assert wrong == {}, f"{name}: columns of another kind than fields.py says"
