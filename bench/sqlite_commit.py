"""SQLite commits on a large events table: WAL checkpoints inside the commit, or on their thread.

Fills an events table (the shipped schema) with --rows rows whose event_ids are random, as
partners' UUIDs are, so every commit dirties index pages all over the file. Then it writes
--commits commits of --batch rows each (synchronous=FULL, multi-row INSERT as the writer does)
twice: once with SQLite's default checkpoint inside the commit that crosses 1,000 WAL pages, once
with the store's Checkpointer thread (PASSIVE, every second) and the writer's high backstop.
Prints rows/s, CPU per row and commit latency for each, repeated --repeat times.

    python bench/sqlite_commit.py [--rows 1000000] [--batch 24] [--commits 1500] [--repeat 2]
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import sqlite3
import sys
import tempfile
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))

from thrad_events.fields import EVENTS  # noqa: E402
from thrad_events.store.checkpoint import BACKSTOP_PAGES, Checkpointer  # noqa: E402
from thrad_events.store.sqlite import SqliteStore  # noqa: E402
from thrad_events.store.sqlite_values import row_values  # noqa: E402
from thrad_events.store.sqlite_writes import EventRows  # noqa: E402

ROW: dict[str, Any] = {
    "received_at": datetime(2026, 2, 19, 18, 0, tzinfo=UTC),
    "partner_id": "ptn_bench",
    "event_name": "page_view",
    "tag_id": "adv_001",
    "timestamp": 1771524000,
    "page_url": "https://shop.example.com/checkout?utm_source=chat",
    "user_agent": "Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7) AppleWebKit/605.1.15 "
    "(KHTML, like Gecko) Version/17.1 Safari/605.1.15",
    "channel": "server",
    "session_id": "sess_abc",
    "params": {"step": "shipping", "integration": "partner_s2s", "partner_id": "ptn_bench"},
    "ip_address": "81.2.69.142",
    "sender_ip": "81.2.69.142",
    "geo_country": "GB",
    "geo_city": "London",
    "geo_lat": 51.5142,
    "geo_lon": -0.0931,
    "ua_browser": "Safari",
    "ua_os": "Mac OS X",
    "ua_device": "Mac",
    "utm_source": "chat",
}


def rows(count: int) -> EventRows:
    """`count` new event rows, as the store hands them to its writer."""
    values = [row_values({**ROW, "event_id": str(uuid.uuid4())}, EVENTS) for _ in range(count)]
    return EventRows(values)


def write(connection: sqlite3.Connection, batch: EventRows) -> None:
    """What the writer does with them: merged multi-row INSERTs inside one transaction."""
    EventRows.run_merged(connection, [batch])


def fill(path: Path, count: int) -> None:
    store = SqliteStore(f"sqlite:///{path}")
    store.migrate()
    with contextlib.closing(store._connect()) as connection:
        connection.execute("PRAGMA synchronous = OFF")
        for start in range(0, count, 256):
            size = min(256, count - start)
            connection.execute("BEGIN")
            write(connection, rows(size))
            connection.execute("COMMIT")
        connection.execute("PRAGMA wal_checkpoint(TRUNCATE)")


def measure(base: Path, folder: Path, args: argparse.Namespace, *, thread: bool) -> str:
    path = folder / "copy.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    shutil.copy(base, path)
    store = SqliteStore(f"sqlite:///{path}")
    checkpointer = Checkpointer(store._connect, every_s=1.0)
    connection = store._connect()
    if thread:
        connection.execute(f"PRAGMA wal_autocheckpoint = {BACKSTOP_PAGES}")
        checkpointer.start()
    batches = [rows(args.batch) for _ in range(args.commits)]
    latencies = []
    cpu, wall = time.process_time(), time.perf_counter()
    for batch in batches:
        began = time.perf_counter()
        connection.execute("BEGIN IMMEDIATE")
        write(connection, batch)
        connection.execute("COMMIT")
        latencies.append(time.perf_counter() - began)
    cpu, wall = time.process_time() - cpu, time.perf_counter() - wall
    checkpointer.stop()
    connection.close()
    latencies.sort()
    written = args.batch * args.commits
    label = "checkpoint thread" if thread else "checkpoint in commit"
    return (
        f"{label:<21} {written / wall:8,.0f} rows/s  {cpu / written * 1e6:6.1f} µs CPU/row  "
        f"commit p50 {latencies[len(latencies) // 2] * 1e3:5.2f} ms  "
        f"p99 {latencies[int(len(latencies) * 0.99)] * 1e3:6.2f} ms"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch", type=int, default=24)
    parser.add_argument("--commits", type=int, default=1500)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as name:
        folder = Path(name)
        base = folder / "base.db"
        began = time.perf_counter()
        fill(base, args.rows)
        print(
            f"{args.rows:,} rows with random event_ids in {time.perf_counter() - began:.0f} s; "
            f"commits of {args.batch} rows, synchronous=FULL, SQLite {sqlite3.sqlite_version}"
        )
        for _ in range(args.repeat):
            print(measure(base, folder, args, thread=False))
            print(measure(base, folder, args, thread=True))


if __name__ == "__main__":
    main()
