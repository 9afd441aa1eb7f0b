"""PostgreSQL driver benchmark: psycopg 3 against asyncpg on the store's own write and read shapes.

Each cell runs for `--seconds` on a throwaway schema of a real PostgreSQL and prints rows/s:

- `unnest`: what PostgresStore's writer sends, one INSERT ... SELECT FROM unnest(arrays)
  ON CONFLICT DO NOTHING RETURNING per batch, autocommit (one round trip, one commit per batch);
- `executemany`: the same rows as one INSERT per row inside one transaction (psycopg in
  pipeline mode, asyncpg's executemany), for comparison;
- `lookup`: one indexed single-row SELECT per round trip (an API key lookup).

Every row is ~25 columns like an event, with a UNIQUE (partner_id, tag_id, event_id) index, and
every row is new, so each one is a durable insert (synchronous_commit as the server has it).

    python bench/pg_drivers.py [--url postgresql://postgres@127.0.0.1:5432/test] [--seconds 2]
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import itertools
import json
import secrets
import time
from collections.abc import Awaitable, Callable
from datetime import UTC, datetime
from typing import Any

import psycopg

TEXT_COLUMNS = (
    "partner_id",
    "event_name",
    "tag_id",
    "event_id",
    "page_url",
    "referrer",
    "user_agent",
    "channel",
    "session_id",
    "client_id",
    "attribution_type",
    "impression_id",
    "click_id",
    "bid_id",
    "impression_state",
    "ip_address",
    "sender_ip",
    "geo_country",
    "geo_city",
    "ua_browser",
    "ua_os",
    "ua_device",
)
COLUMNS = ("received_at", "timestamp", *TEXT_COLUMNS, "params")
TYPES = ("timestamptz", "bigint", *("text" for _ in TEXT_COLUMNS), "jsonb")
_counter = itertools.count()


def schema_sql(schema: str) -> str:
    columns = ", ".join(f"{name} {kind}" for name, kind in zip(COLUMNS, TYPES, strict=True))
    return (
        f"CREATE SCHEMA {schema}; "
        f"CREATE TABLE {schema}.events (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, "
        f"{columns}); "
        f"CREATE UNIQUE INDEX ON {schema}.events (partner_id, tag_id, event_id); "
        f"CREATE INDEX ON {schema}.events (partner_id, received_at); "
        f"CREATE INDEX ON {schema}.events (tag_id, received_at)"
    )


def make_row() -> tuple[Any, ...]:
    n = next(_counter)
    text = {
        "partner_id": "ptn_bench",
        "event_name": "page_view",
        "tag_id": "adv_001",
        "event_id": f"ev-{n}",
        "page_url": f"https://shop.example.com/products/{n % 977}?utm_source=thrad",
        "user_agent": "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/120.0 Safari/537",
        "channel": "server",
        "session_id": f"s-{n // 10}",
        "client_id": f"c-{n // 50}",
        "ip_address": "203.0.113.7",
        "sender_ip": "198.51.100.2",
        "geo_country": "DE",
        "ua_browser": "Chrome",
        "ua_os": "Linux",
        "ua_device": "Other",
    }
    params = json.dumps(
        {"integration": "partner_s2s", "partner_id": "ptn_bench", "step": "shipping", "n": n}
    )
    return (
        datetime.now(UTC),
        1771879200 + n,
        *(text.get(name) for name in TEXT_COLUMNS),
        params,
    )


def unnest_sql(schema: str, mark: Callable[[int], str]) -> str:
    arrays = ", ".join(f"{mark(i)}::{kind}[]" for i, kind in enumerate(TYPES))
    names = ", ".join(COLUMNS)
    return (
        f"INSERT INTO {schema}.events ({names}) SELECT {names} FROM unnest({arrays}) "
        f"AS u({names}) ON CONFLICT DO NOTHING RETURNING partner_id, tag_id, event_id"
    )


def row_sql(schema: str, mark: Callable[[int], str]) -> str:
    marks = ", ".join(mark(i) for i in range(len(COLUMNS)))
    return (
        f"INSERT INTO {schema}.events ({', '.join(COLUMNS)}) VALUES ({marks}) "
        "ON CONFLICT DO NOTHING"
    )


def columns_of(rows: list[tuple[Any, ...]]) -> list[list[Any]]:
    return [list(column) for column in zip(*rows, strict=True)]


async def timed(seconds: float, batch: int, step: Callable[[], Awaitable[None]]) -> float:
    """Rows per second of `step` (which writes `batch` rows) repeated for `seconds`."""
    await step()  # warm-up: connection, prepared statements
    done = 0
    started = time.perf_counter()
    while time.perf_counter() - started < seconds:
        await step()
        done += batch
    return done / (time.perf_counter() - started)


async def bench_psycopg(
    url: str, schema: str, seconds: float, sizes: list[int]
) -> dict[str, float]:
    results: dict[str, float] = {}
    async with await psycopg.AsyncConnection.connect(url, autocommit=True) as conn:
        unnest = unnest_sql(schema, lambda i: "%b")
        single = row_sql(schema, lambda i: "%s")
        for size in sizes:

            async def by_unnest(size: int = size) -> None:
                cursor = await conn.execute(unnest, columns_of([make_row() for _ in range(size)]))
                assert len(await cursor.fetchall()) == size

            async def by_executemany(size: int = size) -> None:
                rows = [make_row() for _ in range(size)]
                async with conn.transaction():
                    await conn.cursor().executemany(single, rows)

            results[f"unnest/{size}"] = await timed(seconds, size, by_unnest)
            results[f"executemany/{size}"] = await timed(seconds, size, by_executemany)

        async def lookup() -> None:
            cursor = await conn.execute(
                f"SELECT * FROM {schema}.events WHERE partner_id = %s AND tag_id = %s "
                "AND event_id = %s",
                ("ptn_bench", "adv_001", "ev-1"),
            )
            await cursor.fetchone()

        results["lookup"] = await timed(seconds, 1, lookup)
    return results


async def bench_asyncpg(
    url: str, schema: str, seconds: float, sizes: list[int]
) -> dict[str, float]:
    import asyncpg  # type: ignore[import-not-found]  # optional, not a dependency

    results: dict[str, float] = {}
    conn = await asyncpg.connect(url)
    try:
        unnest = unnest_sql(schema, lambda i: f"${i + 1}")
        single = row_sql(schema, lambda i: f"${i + 1}")
        for size in sizes:

            async def by_unnest(size: int = size) -> None:
                rows = await conn.fetch(unnest, *columns_of([make_row() for _ in range(size)]))
                assert len(rows) == size

            async def by_executemany(size: int = size) -> None:
                rows = [make_row() for _ in range(size)]
                async with conn.transaction():
                    await conn.executemany(single, rows)

            results[f"unnest/{size}"] = await timed(seconds, size, by_unnest)
            results[f"executemany/{size}"] = await timed(seconds, size, by_executemany)

        async def lookup() -> None:
            await conn.fetchrow(
                f"SELECT * FROM {schema}.events WHERE partner_id = $1 AND tag_id = $2 "
                "AND event_id = $3",
                "ptn_bench",
                "adv_001",
                "ev-1",
            )

        results["lookup"] = await timed(seconds, 1, lookup)
    finally:
        await conn.close()
    return results


async def bench_writers(url: str, schema: str, seconds: float, writers: int, size: int) -> float:
    """Rows/s of `writers` concurrent psycopg connections (processes of one or more nodes)."""
    unnest = unnest_sql(schema, lambda i: "%b")
    conns = [await psycopg.AsyncConnection.connect(url, autocommit=True) for _ in range(writers)]
    try:

        async def one(conn: psycopg.AsyncConnection[Any]) -> int:
            done = 0
            started = time.perf_counter()
            while time.perf_counter() - started < seconds:
                await conn.execute(unnest, columns_of([make_row() for _ in range(size)]))
                done += size
            return done

        started = time.perf_counter()
        counts = await asyncio.gather(*(one(conn) for conn in conns))
        return sum(counts) / (time.perf_counter() - started)
    finally:
        for conn in conns:
            await conn.close()


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", default="postgresql://postgres@127.0.0.1:5432/test")
    parser.add_argument("--seconds", type=float, default=2.0)
    parser.add_argument("--sizes", default="1,32,256")
    parser.add_argument("--writers", default="1,2,4", help="concurrent writers, psycopg unnest")
    args = parser.parse_args()
    sizes = [int(size) for size in args.sizes.split(",")]
    schema = "bench_" + secrets.token_hex(4)
    with psycopg.connect(args.url, autocommit=True) as admin:
        admin.execute(schema_sql(schema))  # type: ignore[arg-type]
        settings = admin.execute(
            "SELECT current_setting('server_version'), current_setting('synchronous_commit')"
        ).fetchone()
    try:
        print(f"PostgreSQL {settings}, {len(COLUMNS)} columns, {args.seconds:g} s per cell")
        figures = {"psycopg": await bench_psycopg(args.url, schema, args.seconds, sizes)}
        if importlib.util.find_spec("asyncpg") is not None:
            figures["asyncpg"] = await bench_asyncpg(args.url, schema, args.seconds, sizes)
        else:
            print("asyncpg is not installed (pip install asyncpg==0.32.0): psycopg only")
        cells = list(figures["psycopg"])
        print(f"{'rows/s':<18}" + "".join(f"{driver:>12}" for driver in figures))
        for cell in cells:
            print(f"{cell:<18}" + "".join(f"{figures[d][cell]:>12,.0f}" for d in figures))
        size = max(sizes)
        for writers in (int(n) for n in args.writers.split(",")):
            rate = await bench_writers(args.url, schema, args.seconds, writers, size)
            print(f"psycopg unnest/{size}, {writers} concurrent writers: {rate:,.0f} rows/s")
    finally:
        with psycopg.connect(args.url, autocommit=True) as admin:
            admin.execute(f"DROP SCHEMA {schema} CASCADE")  # type: ignore[arg-type]


if __name__ == "__main__":
    asyncio.run(main())
