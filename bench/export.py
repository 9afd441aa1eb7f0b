"""HTTP export benchmark: does a million-row export stream in constant memory, and how fast?

Fills a temporary SQLite store with one partner's events in one transaction of plain SQL (the
export reads what is stored, however it got there), starts the real `thrad-events serve`
process, and pages through GET /v1/api/export/events (limit 100000, following X-Next-Cursor)
while sampling the server's resident memory every 20 ms. It does this for the first 10k rows and
for all of them, and prints rows/s and the peak RSS of each run next to the idle RSS.

    python bench/export.py [--rows 1000000] [--format jsonl|csv] [--keep PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import sqlite3
import sys
import tempfile
import threading
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import httpx

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "src"))
sys.path.insert(0, str(ROOT))

from tests.integration.server import ServerProcess  # noqa: E402

from thrad_events.auth import admin  # noqa: E402
from thrad_events.instants import format_time  # noqa: E402
from thrad_events.store.sqlite import SqliteStore  # noqa: E402

PAGE = 100_000


def fill(path: Path, rows: int) -> str:
    """`rows` events of one partner, received one millisecond apart; returns an API key."""
    store = SqliteStore(f"sqlite:///{path}")
    store.migrate()
    made = admin.create_key(
        store,
        admin.CLI_ACTOR,
        partner="bench",
        label="export",
        rate_limit=100_000,
        create_partner=True,
    )
    store.close_sync()
    start = datetime.now(UTC) - timedelta(days=30)
    params = json.dumps({"integration": "partner_s2s", "step": "shipping", "partner_id": "x"})
    with sqlite3.connect(path) as db:
        db.execute("PRAGMA synchronous = OFF")
        db.executemany(
            "INSERT INTO events (received_at, partner_id, event_name, tag_id, event_id, "
            "timestamp, page_url, user_agent, channel, params, ip_address, geo_country, "
            "ua_browser) VALUES (?, ?, 'page_view', 'adv_001', ?, ?, ?, ?, 'server', ?, "
            "'203.0.113.7', 'US', 'Chrome')",
            (
                (
                    format_time(start + timedelta(milliseconds=n)),
                    made.record.partner_id,
                    f"evt-{n}",
                    int(start.timestamp()) + n // 1000,
                    f"https://shop.example.com/p/{n % 5000}?utm_source=thrad",
                    "Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0 Safari/537.36",
                    params,
                )
                for n in range(rows)
            ),
        )
    return made.api_key


def rss_kib(pid: int) -> int:
    """Resident memory of the process and its children (uvicorn's worker), in KiB."""
    total = 0
    pids = [pid]
    children = Path(f"/proc/{pid}/task/{pid}/children")
    if children.exists():
        pids += [int(child) for child in children.read_text().split()]
    for each in pids:
        try:
            for line in Path(f"/proc/{each}/status").read_text().splitlines():
                if line.startswith("VmRSS:"):
                    total += int(line.split()[1])
        except FileNotFoundError:
            pass
    return total


def stream(server: ServerProcess, key: str, fmt: str, wanted: int) -> tuple[int, float, int]:
    """Page through the export until `wanted` rows; rows read, seconds, peak RSS in KiB."""
    peak = rss_kib(server.process.pid)
    done = threading.Event()

    def sample() -> None:
        nonlocal peak
        while not done.wait(0.02):
            peak = max(peak, rss_kib(server.process.pid))

    sampler = threading.Thread(target=sample, daemon=True)
    sampler.start()
    rows = 0
    started = time.perf_counter()
    url: str | None = f"/v1/api/export/events?format={fmt}&limit={min(PAGE, wanted)}"
    with httpx.Client(
        base_url=server.base_url, headers={"Authorization": f"Bearer {key}"}, timeout=120
    ) as http:
        while url is not None and rows < wanted:
            with http.stream("GET", url) as answer:
                answer.raise_for_status()
                for line in answer.iter_lines():
                    if line:
                        rows += 1
                cursor = answer.headers.get("x-next-cursor")
            if fmt == "csv":
                rows -= 1  # each page's header row
            url = (
                f"/v1/api/export/events?format={fmt}&limit={PAGE}&cursor={cursor}"
                if cursor
                else None
            )
    elapsed = time.perf_counter() - started
    done.set()
    sampler.join()
    return rows, elapsed, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--format", choices=("jsonl", "csv"), default="jsonl")
    parser.add_argument("--keep", type=Path, help="Keep the database at this path")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        path = args.keep or Path(tmp) / "export.db"
        began = time.perf_counter()
        key = fill(path, args.rows)
        print(f"filled {args.rows:,} events in {time.perf_counter() - began:.1f} s")
        server = ServerProcess(
            f"sqlite:///{path}",
            Path(tmp) / "server.log",
            env={"THRAD_EXPORT_SETTLE_S": "0", "THRAD_LOG_LEVEL": "WARNING"},
        )
        try:
            idle = rss_kib(server.process.pid)
            print(f"server idle RSS: {idle / 1024:.0f} MiB")
            for wanted in (10_000, args.rows):
                rows, seconds, peak = stream(server, key, args.format, wanted)
                print(
                    f"{args.format} {rows:>9,} rows: {rows / seconds:>9,.0f} rows/s, "
                    f"{seconds:6.1f} s, peak RSS {peak / 1024:.0f} MiB "
                    f"(+{(peak - idle) / 1024:.0f} MiB over idle)"
                )
        finally:
            server.stop()
        os.sync()


if __name__ == "__main__":
    main()
