"""The floor under the collect batch: what SQLite alone needs to store one event row.

No server, no validation: rows already built (the shipped schema's 40 columns, the bench's
event), written by the writer's own merged-insert path (`EventRows.run_merged`) in commits of
--batch rows with synchronous=FULL, on one thread. Measured with the shipped indexes, then
without some of them, to show what each costs and that even a table with no index but its
rowid stays far above 10 µs of CPU per row. Prints rows/s and CPU (user + system) per row.

    python bench/sqlite_floor.py [--rows 200000] [--batch 512] [--repeat 2]
"""

from __future__ import annotations

import argparse
import contextlib
import resource
import sqlite3
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "bench"))
sys.path.insert(0, str(ROOT / "src"))

from sqlite_commit import ROW, write  # noqa: E402

from thrad_events.fields import EVENTS  # noqa: E402
from thrad_events.store.sqlite import SqliteStore  # noqa: E402
from thrad_events.store.sqlite_values import row_values  # noqa: E402
from thrad_events.store.sqlite_writes import EventRows  # noqa: E402

LAYOUTS: dict[str, tuple[str, ...]] = {
    "shipped (dedupe, received_at, partner+received_at, click)": (),
    "without the dedupe index": ("events_dedupe",),
    "without both received_at indexes": ("events_received_at", "events_partner_received_at"),
    "no index but the rowid": (
        "events_dedupe",
        "events_received_at",
        "events_partner_received_at",
        "events_click",
    ),
}


def batches(rows: int, batch: int) -> list[EventRows]:
    """Event rows with ids like the load benchmark's (one prefix, counters), `batch` a commit."""
    return [
        EventRows(
            [
                row_values({**ROW, "event_id": f"1-4242-{i}"}, EVENTS)
                for i in range(start, min(rows, start + batch))
            ]
        )
        for start in range(0, rows, batch)
    ]


def rows_per_second(
    folder: Path, drop: tuple[str, ...], rows: int, batch: int
) -> tuple[float, float]:
    """Rows/s and CPU µs per row (user + system) for `rows` event rows in commits of `batch`,
    with the shipped schema less the indexes in `drop`."""
    path = folder / "floor.db"
    for suffix in ("", "-wal", "-shm"):
        Path(f"{path}{suffix}").unlink(missing_ok=True)
    store = SqliteStore(f"sqlite:///{path}")
    store.migrate()
    work = batches(rows, batch)
    with contextlib.closing(store._connect()) as connection:
        connection.execute("PRAGMA synchronous = FULL")
        for index in drop:
            connection.execute(f"DROP INDEX {index}")
        before, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter()
        for chunk in work:
            connection.execute("BEGIN IMMEDIATE")
            write(connection, chunk)
            connection.execute("COMMIT")
        after, wall = resource.getrusage(resource.RUSAGE_SELF), time.perf_counter() - wall
        (stored,) = connection.execute("SELECT count(*) FROM events").fetchone()
    assert stored == rows, (stored, rows)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return rows / wall, cpu / rows * 1e6


def measure(folder: Path, drop: tuple[str, ...], args: argparse.Namespace) -> str:
    rate, cpu = rows_per_second(folder, drop, args.rows, args.batch)
    return f"{rate:9,.0f} rows/s  {cpu:5.1f} µs CPU/row"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=int, default=200_000)
    parser.add_argument("--batch", type=int, default=512)
    parser.add_argument("--repeat", type=int, default=2)
    args = parser.parse_args()
    print(
        f"{args.rows:,} event rows in commits of {args.batch}, synchronous=FULL, "
        f"SQLite {sqlite3.sqlite_version}, one thread"
    )
    with tempfile.TemporaryDirectory() as name:
        for label, drop in LAYOUTS.items():
            runs = [measure(Path(name), drop, args) for _ in range(args.repeat)]
            print(f"{label:<58} " + " | ".join(runs))


if __name__ == "__main__":
    main()
