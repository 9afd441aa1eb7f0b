"""fields.py is the one definition of the stored fields: the SQLite migrations, the request
Structs, the enrichment and the pipeline's rows all agree with it. (PostgreSQL's migrations are
checked in tests/integration/store/test_postgres_store.py.)"""

from __future__ import annotations

import asyncio
import json
import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, cast

import pytest

from tests.testdata import geoip_db
from tests.unit.keys import api_key
from thrad_events.config import parse_networks
from thrad_events.enrich.enricher import RowEnricher
from thrad_events.enrich.geo import open_geo
from thrad_events.enrich.ip import TrustedProxies
from thrad_events.enrich.useragent import UserAgentParser
from thrad_events.fields import (
    CLICKS,
    CONVERSIONS,
    ENRICHMENT_FIELDS,
    EVENTS,
    TABLES,
    Kind,
    Table,
    kind_of,
)
from thrad_events.ingest.clicklinks import ClickLink
from thrad_events.ingest.pipeline import Ingestor, RequestContext
from thrad_events.schemas import CollectRequest, ConversionRequest
from thrad_events.store.base import Store
from thrad_events.store.records import InsertResult, Row
from thrad_events.store.sqlite import SqliteStore

# The declared SQLite type of each kind.
SQLITE_TYPES = {
    Kind.TEXT: "TEXT",
    Kind.INTEGER: "INTEGER",
    Kind.REAL: "REAL",
    Kind.FLAG: "INTEGER",
    Kind.JSON: "TEXT",
    Kind.DECIMAL: "TEXT",  # not NUMERIC: its affinity would turn 49.99 into a binary float
    Kind.INSTANT: "TEXT",
    Kind.SENT_INSTANT: "TEXT",
}
# Columns a table has that no row writes: the row id SQLite assigns.
ROW_IDS = {"events": {"id"}, "conversions": {"id"}, "clicks": set()}


@pytest.fixture(scope="module")
def schema(tmp_path_factory: pytest.TempPathFactory) -> Iterator[sqlite3.Connection]:
    path = tmp_path_factory.mktemp("fields") / "events.db"
    store = SqliteStore(f"sqlite:///{path}")
    store.migrate()
    store.close_sync()
    connection = sqlite3.connect(path)
    yield connection
    connection.close()


@pytest.mark.parametrize("table", list(TABLES.values()), ids=list(TABLES))
def test_the_sqlite_migrations_make_exactly_the_defined_columns_of_their_kinds(
    schema: sqlite3.Connection, table: Table
) -> None:
    found = {
        name: declared
        for _, name, declared, *_ in schema.execute(f"PRAGMA table_info({table.name})")
    }
    assert set(found) - ROW_IDS[table.name] == set(table.columns), (
        "a column is added in fields.py and in a migration (sqlite and postgres) together"
    )
    assert {column: found[column] for column in table.columns} == {
        column: SQLITE_TYPES[kind_of(column)] for column in table.columns
    }


def test_every_table_has_the_enrichment_and_the_test_flag_once() -> None:
    for table in TABLES.values():
        assert len(table.columns) == len(set(table.columns))
        assert set(ENRICHMENT_FIELDS) <= set(table.columns)
        assert "test" in table.columns
    assert kind_of("test") is Kind.FLAG


def test_the_columns_copied_as_sent_are_the_request_fields_of_the_same_name() -> None:
    assert set(EVENTS.sent) <= set(CollectRequest.__struct_fields__)
    assert set(CONVERSIONS.sent) <= set(ConversionRequest.__struct_fields__)
    assert set(CLICKS.sent) <= set(ClickLink.__dataclass_fields__)
    for table in TABLES.values():
        assert set(table.sent) <= set(table.columns)
        assert not set(table.sent) & set(ENRICHMENT_FIELDS)


# -- the pipeline's rows -----------------------------------------------------------------------


class Recorder:
    """A store that keeps the click rows given to it."""

    def __init__(self) -> None:
        self.clicks: list[Row] = []

    async def insert_click(self, row: Row) -> InsertResult:
        self.clicks.append(row)
        return InsertResult.INSERTED


@pytest.fixture(scope="module")
def recorder() -> Recorder:
    return Recorder()


@pytest.fixture(scope="module")
def ingestor(recorder: Recorder) -> Ingestor:
    enricher = RowEnricher(
        open_geo(str(geoip_db("GeoIP2-City-Test"))), UserAgentParser(cache_size=16)
    )
    return Ingestor(
        cast(Store, recorder),
        proxies=TrustedProxies(parse_networks("127.0.0.1/32", "test")),
        click_secret="s" * 32,
        click_ttl_s=60,
        enricher=enricher,
    )


CONTEXT = RequestContext(
    peer_ip="127.0.0.1", received_at=datetime(2026, 2, 19, tzinfo=UTC), user_agent="curl/8"
)


def test_an_event_row_has_exactly_the_events_columns(ingestor: Ingestor) -> None:
    body = {"event_name": "page_view", "event_id": "e1", "impression_state": "viewable"}
    row = ingestor.event_row(json.dumps(body).encode(), api_key(), CONTEXT)
    assert set(row) == set(EVENTS.columns)
    assert (row["event_id"], row["impression_state"]) == ("e1", "viewable")


def test_a_conversion_row_has_exactly_the_conversions_columns_and_its_time_as_an_instant(
    ingestor: Ingestor,
) -> None:
    body: dict[str, Any] = {
        "click_id": "c1",
        "conversion_time": "2026-02-19T20:00:00+02:00",
        "conversion_value": 49.99,
        "currency": "usd",
        "order_id": "o1",
    }
    row = ingestor.conversion_row(json.dumps(body).encode(), api_key(), CONTEXT)
    assert set(row) == set(CONVERSIONS.columns)
    assert row["order_id"] == "o1"
    # Written by the store, in the one form (instants.py).
    assert row["conversion_time"] == datetime(2026, 2, 19, 18, tzinfo=UTC)


def test_a_click_row_has_exactly_the_clicks_columns(ingestor: Ingestor, recorder: Recorder) -> None:
    asyncio.run(ingestor.create_click(CONTEXT, campaign_id="c", ad_id="a", test=False))
    [row] = recorder.clicks
    assert set(row) == set(CLICKS.columns)
    assert (row["campaign_id"], row["ad_id"], row["bid_id"]) == ("c", "a", None)


# -- one time format -----------------------------------------------------------------------------


def test_sqlite_writes_every_instant_in_one_form_and_exports_conversion_time_as_sent(
    tmp_path: Path,
) -> None:
    from tests.unit.store.rows import click, conversion, run

    store = SqliteStore(f"sqlite:///{tmp_path / 'times.db'}")
    store.migrate()
    whole = datetime(2026, 2, 19, 18, tzinfo=UTC)
    fraction = datetime(2026, 2, 19, 18, 0, 0, 250000, tzinfo=UTC)

    async def work() -> None:
        await store.insert_click(click("c1"))
        for key, moment in (("k-whole", whole), ("k-fraction", fraction)):
            row = {**conversion("c1", key), "conversion_time": moment, "received_at": moment}
            assert await store.insert_conversion(row) is InsertResult.INSERTED

    try:
        run(store, work)
        with sqlite3.connect(store.path) as connection:
            stored = connection.execute(
                "SELECT received_at, conversion_time FROM conversions ORDER BY dedupe_key"
            ).fetchall()
        assert stored == [
            ("2026-02-19T18:00:00.250000Z", "2026-02-19T18:00:00.250000Z"),
            ("2026-02-19T18:00:00.000000Z", "2026-02-19T18:00:00.000000Z"),
        ]
        exported = {
            row["dedupe_key"]: (row["received_at"], row["conversion_time"])
            for row in store.export_rows("conversions", None)
        }
        assert exported == {
            "k-whole": ("2026-02-19T18:00:00.000000Z", "2026-02-19T18:00:00Z"),
            "k-fraction": ("2026-02-19T18:00:00.250000Z", "2026-02-19T18:00:00.250000Z"),
        }
    finally:
        store.close_sync()


def test_the_sqlite_migration_writes_older_whole_second_conversion_times_in_the_one_form(
    tmp_path: Path,
) -> None:
    """Rows written before times had one width (`...:55Z`) are rewritten by migration 0010;
    those with a fraction already had six digits."""
    from tests.unit.store.rows import click, conversion, run

    store = SqliteStore(f"sqlite:///{tmp_path / 'older.db'}")
    store.migrate()
    older = {"k-whole": "2026-02-19T18:00:55Z", "k-fraction": "2026-02-19T18:00:55.250000Z"}

    async def work() -> None:
        await store.insert_click(click("c1"))
        for key, text in older.items():  # text is stored as it is, as older versions wrote it
            row = {**conversion("c1", key), "conversion_time": text}
            assert await store.insert_conversion(row) is InsertResult.INSERTED

    try:
        run(store, work)
        with sqlite3.connect(store.path) as connection:
            connection.execute("DELETE FROM schema_migrations WHERE version = 10")
        assert store.migrate() == [10]
        with sqlite3.connect(store.path) as connection:
            stored = dict(connection.execute("SELECT dedupe_key, conversion_time FROM conversions"))
        assert stored == {
            "k-whole": "2026-02-19T18:00:55.000000Z",
            "k-fraction": "2026-02-19T18:00:55.250000Z",
        }
        shown = {
            row["dedupe_key"]: row["conversion_time"]
            for row in store.export_rows("conversions", None)
        }
        assert shown == older
    finally:
        store.close_sync()
